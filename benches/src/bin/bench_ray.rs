//! `make bench-ray`: the same workloads on Reef and on Ray, in one run on this
//! machine, one line per figure: `<figure>: reef <v> <unit> | ray <v> <unit> |
//! ratio <x>`. Where batches are short and noise matters (round trips, the
//! seed demo, the map/reduce) Reef's and Ray's batches alternate and the
//! figure is the median of all samples of each.
//!
//! Reef runs on a local node (a child `host` process) with `CPUS` CPUs; Ray is
//! started by `benches/ray/bench_ray.py` with `ray.init()` on the same number
//! of CPUs, in the venv of `scripts/install-ray.sh` (or `$REEF_RAY_PYTHON`).
//! Ray's own messages go to `target/bench-ray/ray.log`. Diagnostics go to
//! stderr (`REEF_LOG=info` for run times).
//!
//! `bench-ray [GROUP...]` runs only some groups: roundtrip, async, actors,
//! put, seed, readers, dag, mapreduce (all by default).

use std::time::Duration;

use anyhow::Result;
use reef::Cluster;
use reef_benches::harness::{self, GIB, MIB};
use reef_benches::ray::Ray;
use reef_benches::report::{median_us, Compared, Unit, COMPARED_HEADER};
use reef_benches::seed::{self, SumParts};
use reef_benches::{dispatch, memory, put, roundtrip, throughput};
use serde_json::json;

/// CPUs of each system's node.
const CPUS: usize = 2;
/// Alternating batches of the short, noise-sensitive figures.
const ROUNDS: usize = 3;
/// Sync calls per batch (after `SYNC_WARMUP` untimed ones).
const SYNC_CALLS: usize = 1_000;
const SYNC_WARMUP: usize = 100;
/// Async tasks or calls per run: Ray runs fewer, its runs would take minutes.
const REEF_ASYNC: usize = throughput::N;
const RAY_ASYNC: usize = 5_000;
const ASYNC_RUNS: usize = 3;
/// Actors created at once per batch, and batches.
const REEF_ACTORS: usize = 500;
const RAY_ACTORS: usize = 10;
const ACTOR_RUNS: usize = 2;
const PUT_RUNS: usize = 5;
/// The DAG: 100 roots x (1 + 99 dependents) = 10,000 tasks.
const DAG_ROOTS: usize = 100;
const DAG_FANOUT: usize = 99;
const DAG_RUNS: usize = 3;

/// The groups of rows, in the order they run.
const GROUPS: [&str; 8] = [
    "roundtrip",
    "async",
    "actors",
    "put",
    "seed",
    "readers",
    "dag",
    "mapreduce",
];

// Reef's side runs on the runtime a latency-minded driver uses
// (`reef::runtime`): one thread that spins briefly before it sleeps.
fn main() -> Result<()> {
    reef::runtime().block_on(run())
}

async fn run() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(bad) = args.iter().find(|a| !GROUPS.contains(&a.as_str())) {
        anyhow::bail!("unknown group `{bad}` (groups: {})", GROUPS.join(", "));
    }
    let wants = |g: &str| args.is_empty() || args.iter().any(|a| a == g);
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("REEF_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    harness::warn_if_busy();
    let log = reef_benches::ray::workspace().join("target/bench-ray/ray.log");
    eprintln!(
        "bench-ray: starting Ray (its messages go to {})",
        log.display()
    );
    let mut ray = Ray::start(CPUS, &log).await?;
    let cluster = seed::local_cluster().await?;
    println!(
        "Reef and Ray {} (numpy {}) side by side on this machine: one local node each, \
         {CPUS} CPUs each, one driver.",
        ray.version, ray.numpy
    );
    println!("{COMPARED_HEADER}");
    let demo = cluster.register_file(harness::guest("demo")).await?;

    if wants("roundtrip") {
        round_trips(&cluster, &demo, &mut ray).await?;
    }
    if wants("async") {
        async_rates(&cluster, &demo, &mut ray).await?;
    }
    if wants("actors") {
        actor_creations(&cluster, &demo, &mut ray).await?;
    }
    if wants("put") {
        puts(&cluster, &mut ray).await?;
    }
    if wants("seed") {
        seed_demo(&cluster, &mut ray).await?;
    }
    if wants("readers") {
        readers(&mut ray).await?;
    }
    if wants("dag") {
        dag(&cluster, &demo, &mut ray).await?;
    }
    if wants("mapreduce") {
        map_reduce(&cluster, &mut ray).await?;
    }

    drop(cluster);
    ray.stop().await
}

fn ms(samples: &[Duration]) -> f64 {
    median_us(samples) / 1e3
}

async fn round_trips(cluster: &Cluster, demo: &reef::Module, ray: &mut Ray) -> Result<()> {
    let args = json!({"warmup": SYNC_WARMUP, "calls": SYNC_CALLS});
    let (mut reef_tasks, mut ray_tasks, mut reef_actors, mut ray_actors) =
        (vec![], vec![], vec![], vec![]);
    for _ in 0..ROUNDS {
        reef_tasks
            .extend(roundtrip::sync_task_samples(cluster, demo, SYNC_WARMUP, SYNC_CALLS).await?);
        ray_tasks.extend(ray.durations("roundtrip", args.clone(), "samples").await?);
        reef_actors
            .extend(roundtrip::sync_actor_samples(cluster, demo, SYNC_WARMUP, SYNC_CALLS).await?);
        ray_actors.extend(
            ray.durations("actor_roundtrip", args.clone(), "samples")
                .await?,
        );
    }
    let calls = ROUNDS * SYNC_CALLS;
    Compared::new(
        format!("sync task round trip (median of {calls}, {ROUNDS} alternating batches)"),
        median_us(&reef_tasks),
        median_us(&ray_tasks),
        Unit::Micros,
    )
    .print();
    Compared::new(
        format!("sync actor call (median of {calls}, {ROUNDS} alternating batches)"),
        median_us(&reef_actors),
        median_us(&ray_actors),
        Unit::Micros,
    )
    .print();
    Ok(())
}

async fn async_rates(cluster: &Cluster, demo: &reef::Module, ray: &mut Ray) -> Result<()> {
    let args = json!({"n": RAY_ASYNC, "runs": ASYNC_RUNS});
    let reef = throughput::task_run_times(cluster, demo, REEF_ASYNC, ASYNC_RUNS).await?;
    let theirs = ray.durations("tasks", args.clone(), "seconds").await?;
    Compared::new(
        format!(
            "async task throughput (one driver; runs of {REEF_ASYNC} noop tasks on reef, \
             {RAY_ASYNC} on ray; median of {ASYNC_RUNS})"
        ),
        throughput::rate(REEF_ASYNC, &reef),
        throughput::rate(RAY_ASYNC, &theirs),
        Unit::TasksPerSec,
    )
    .print();
    let reef = throughput::actor_call_run_times(cluster, demo, REEF_ASYNC, ASYNC_RUNS).await?;
    let theirs = ray.durations("actor_calls", args, "seconds").await?;
    Compared::new(
        format!(
            "async actor calls (one driver, one actor; runs of {REEF_ASYNC} calls on reef, \
             {RAY_ASYNC} on ray; median of {ASYNC_RUNS})"
        ),
        throughput::rate(REEF_ASYNC, &reef),
        throughput::rate(RAY_ASYNC, &theirs),
        Unit::CallsPerSec,
    )
    .print();
    Ok(())
}

async fn actor_creations(cluster: &Cluster, demo: &reef::Module, ray: &mut Ray) -> Result<()> {
    let reef = dispatch::actor_creation_times(cluster, demo, REEF_ACTORS, ACTOR_RUNS).await?;
    let theirs = ray
        .durations(
            "actor_creations",
            json!({"n": RAY_ACTORS, "runs": ACTOR_RUNS}),
            "seconds",
        )
        .await?;
    Compared::new(
        format!(
            "actor creations (created at once, until each one's first call answered; batches \
             of {REEF_ACTORS} on reef, {RAY_ACTORS} on ray; median of {ACTOR_RUNS})"
        ),
        throughput::rate(REEF_ACTORS, &reef),
        throughput::rate(RAY_ACTORS, &theirs),
        Unit::PerSec,
    )
    .print();
    Ok(())
}

async fn puts(cluster: &Cluster, ray: &mut Ray) -> Result<()> {
    let data = harness::touched_buffer(GIB as usize);
    for (size, label) in [(64 * MIB, "64 MiB"), (GIB, "1 GiB")] {
        let bytes = &data[..size as usize];
        let reef = put::puts(cluster, bytes, PUT_RUNS).await?;
        let theirs = ray
            .durations("put", json!({"size": size, "runs": PUT_RUNS}), "samples")
            .await?;
        Compared::new(
            format!(
                "driver put of {label} (reef: put_bytes into the mapped arena; ray: ray.put of \
                 a numpy array; median of {PUT_RUNS})"
            ),
            put::gb_per_s(bytes.len(), &reef),
            put::gb_per_s(bytes.len(), &theirs),
            Unit::GBPerSec,
        )
        .print();
    }
    Ok(())
}

async fn seed_demo(cluster: &Cluster, ray: &mut Ray) -> Result<()> {
    let obj = cluster.put_f64s(&seed::arange(seed::SEED_N)).await?;
    let mut modules = vec![];
    for (guest, label) in seed::GUESTS {
        modules.push((cluster.register_file(harness::guest(guest)).await?, label));
    }
    let demo = SumParts::seed(cluster, &obj);
    let runs = json!({"warmup": seed::SEED_WARMUP, "runs": seed::SEED_RUNS});
    let mut reef = vec![vec![]; modules.len()];
    let (mut theirs, mut host, mut numpy) = (vec![], vec![], vec![]);
    for _ in 0..ROUNDS {
        for ((module, _), samples) in modules.iter().zip(&mut reef) {
            samples.extend(
                demo.samples(module, seed::SEED_WARMUP, seed::SEED_RUNS)
                    .await?,
            );
        }
        theirs.extend(ray.durations("seed_demo", runs.clone(), "samples").await?);
        host.extend(
            seed::host_sum_samples(
                cluster,
                &obj,
                seed::SEED_N,
                seed::SEED_WARMUP,
                seed::SEED_RUNS,
            )
            .await?,
        );
        numpy.extend(ray.durations("numpy_sum", runs.clone(), "samples").await?);
    }
    let n = ROUNDS * seed::SEED_RUNS;
    for ((_, label), samples) in modules.iter().zip(&reef) {
        Compared::new(
            format!(
                "seed demo, 4 tasks summing a stored 64 MB f64 array (reef: {label}; ray: numpy \
                 tasks; median of {n}, {ROUNDS} alternating batches)"
            ),
            ms(samples),
            ms(&theirs),
            Unit::Millis,
        )
        .print();
    }
    Compared::new(
        format!(
            "seed demo's sums host-native in the driver, one thread (reef: Rust loop over the \
             arena; ray: numpy sum; median of {n})"
        ),
        ms(&host),
        ms(&numpy),
        Unit::Millis,
    )
    .print();
    ray.run("drop_arrays", json!({})).await?;
    Ok(())
}

async fn readers(ray: &mut Ray) -> Result<()> {
    let reef = memory::peak_mib(&["hold_view"]).await?[0];
    let theirs = ray.run("readers", json!({})).await?;
    let theirs = theirs["mib"].as_f64().unwrap_or(f64::NAN);
    Compared::new(
        format!(
            "memory added by {} concurrent readers of one 64 MiB object holding a zero-copy view \
             (peak private memory, RssAnon + VmPTE; reef: the node process; ray: all of its \
             processes)",
            memory::READERS
        ),
        reef,
        theirs,
        Unit::MiB,
    )
    .print();
    Ok(())
}

async fn dag(cluster: &Cluster, demo: &reef::Module, ray: &mut Ray) -> Result<()> {
    let tasks = DAG_ROOTS * (1 + DAG_FANOUT);
    let reef = dispatch::dag_times(cluster, demo, DAG_ROOTS, DAG_FANOUT, DAG_RUNS).await?;
    let theirs = ray
        .durations(
            "dag",
            json!({"roots": DAG_ROOTS, "fanout": DAG_FANOUT, "runs": DAG_RUNS}),
            "seconds",
        )
        .await?;
    Compared::new(
        format!(
            "DAG of {tasks} trivial tasks on one node ({DAG_ROOTS} roots x {DAG_FANOUT} \
             dependents taking the root's result; median of {DAG_RUNS})"
        ),
        throughput::rate(tasks, &reef),
        throughput::rate(tasks, &theirs),
        Unit::TasksPerSec,
    )
    .print();
    Ok(())
}

async fn map_reduce(cluster: &Cluster, ray: &mut Ray) -> Result<()> {
    let data = seed::arange(seed::MAP_N);
    let obj = cluster.put_f64s(&data).await?;
    drop(data);
    let mut modules = vec![];
    for (guest, label) in seed::GUESTS {
        modules.push((cluster.register_file(harness::guest(guest)).await?, label));
    }
    let job = SumParts::map_reduce(cluster, &obj);
    let runs = json!({"warmup": seed::MAP_WARMUP, "runs": seed::MAP_RUNS});
    let mut reef = vec![vec![]; modules.len()];
    let (mut theirs, mut host, mut numpy) = (vec![], vec![], vec![]);
    for _ in 0..ROUNDS {
        for ((module, _), samples) in modules.iter().zip(&mut reef) {
            samples.extend(
                job.samples(module, seed::MAP_WARMUP, seed::MAP_RUNS)
                    .await?,
            );
        }
        theirs.extend(ray.durations("map_reduce", runs.clone(), "samples").await?);
        host.extend(
            seed::host_sum_samples(cluster, &obj, seed::MAP_N, seed::MAP_WARMUP, seed::MAP_RUNS)
                .await?,
        );
        numpy.extend(ray.durations("stored_sum", runs.clone(), "samples").await?);
    }
    ray.run("drop_arrays", json!({})).await?;
    let n = ROUNDS * seed::MAP_RUNS;
    for ((_, label), samples) in modules.iter().zip(&reef) {
        Compared::new(
            format!(
                "map/reduce of a stored 1 GiB f64 array over {} tasks, partial sums added by \
                 the driver (reef: {label}; ray: numpy tasks; median of {n}, {ROUNDS} \
                 alternating batches)",
                seed::MAP_TASKS
            ),
            ms(samples),
            ms(&theirs),
            Unit::Millis,
        )
        .print();
    }
    Compared::new(
        format!(
            "map/reduce's sums host-native in the driver, one thread: the memory-bandwidth \
             floor (reef: Rust loop over the arena; ray: numpy sum of the stored array; \
             median of {n})"
        ),
        ms(&host),
        ms(&numpy),
        Unit::Millis,
    )
    .print();
    Ok(())
}
