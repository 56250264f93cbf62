//! Cluster figures: object transfer and broadcast between nodes, a DAG of
//! trivial tasks spread over three nodes, and the control plane's placement
//! rates. Every node is a real `host` process on 127.0.0.1 (a head and
//! workers joining it), so the figures include loopback TCP between nodes.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use reef::{Cluster, Module, ObjectRef, Strategy};
use reef_gcs::{ControlPlane, GcsClient};
use reef_proto::{
    CreatePlacementGroupRequest, PlacementGroupState, PlacementStrategy, ResourceMap,
};

use crate::harness::{self, ChildNode, GIB, MIB};
use crate::report::{median_us, micros, Bound, Figure, Unit};

/// Heartbeats of the bench clusters (the head's `--heartbeat-ms`).
const HEARTBEAT_MS: &str = "200";
/// A custom resource every node has plenty of, for placement figures (so
/// thousands of placements never run out of CPUs).
const SLOT: &str = "bench_slot";

/// A head and `workers` workers, each with `store` bytes of object store;
/// returns once the head sees every node alive and every arena is allocated.
pub async fn start(workers: usize, store: u64, extra: &[&str]) -> Result<Vec<ChildNode>> {
    let store = format!("{}MiB", store / MIB);
    let mut common = vec!["--object-store-memory", store.as_str()];
    common.extend_from_slice(extra);
    let mut head_args = vec!["--heartbeat-ms", HEARTBEAT_MS];
    head_args.extend_from_slice(&common);
    let head = ChildNode::start(&head_args)?;
    let mut nodes = vec![];
    for _ in 0..workers {
        nodes.push(ChildNode::start_worker(&head, &common)?);
    }
    nodes.insert(0, head);
    let driver = nodes[0].connect().await?;
    let start = Instant::now();
    loop {
        let status = driver.status().await?;
        let alive = status.nodes.iter().filter(|n| n.state == "alive").count();
        if alive == workers + 1 {
            break;
        }
        ensure!(
            start.elapsed() < Duration::from_secs(30),
            "only {alive} of {} nodes joined within 30 s",
            workers + 1
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for node in &nodes {
        let arena = harness::arena_of(&node.address)?;
        harness::wait_steady(&arena).await?;
        // And mapped into the node (`Arena::prefault`), so that does not run
        // during a figure: 90% of it (the kernel may unmap idle pages).
        let size = std::fs::metadata(&arena)?.len();
        let start = Instant::now();
        loop {
            let mapped = reef_testkit::arena::mapped_bytes(node.pid(), &arena)?;
            if mapped >= size / 10 * 9 {
                break;
            }
            if start.elapsed() > Duration::from_secs(20) {
                tracing::warn!(
                    arena = %arena.display(),
                    mapped,
                    size,
                    "the arena is not fully mapped after 20 s; going on"
                );
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    Ok(nodes)
}

/// Guest memory limit of the view tasks: the view is mapped into guest memory.
const VIEW_LIMIT: u64 = GIB + GIB / 2;

fn on(node_id: &str) -> Strategy {
    Strategy::NodeAffinity {
        node_id: node_id.to_owned(),
        soft: false,
    }
}

/// One `view_len` task on `node_id` over `obj`; its time from submit to result.
async fn view_len_on(
    driver: &Cluster,
    demo: &Module,
    obj: &ObjectRef,
    node_id: &str,
) -> Result<(Duration, u64)> {
    let start = Instant::now();
    let r = driver
        .task(demo, "view_len")
        .arg(obj)
        // The view is mapped into the guest's memory.
        .memory_limit(VIEW_LIMIT)
        .strategy(on(node_id))
        .submit()?;
    let len: u64 = driver.get(&r).await?;
    Ok((start.elapsed(), len))
}

/// **Transfer of a 1 GiB object between two nodes.** A head and one worker
/// (3 GiB object store each). The driver (on the head) puts 1 GiB, then runs
/// `view_len` over it on the worker (hard node affinity), which pulls it. The
/// figure is 1 GiB over (that task's submit-to-result time minus the median
/// of the same task over fresh 1 MiB objects, also pulled: the task's own
/// round trip). The worker's `bytes_pulled` confirms 1 GiB moved once. The
/// bytes go over loopback TCP, the path between machines (raw pull
/// connections, `host/src/transfer/`); nothing takes a same-machine shortcut.
pub async fn transfer() -> Result<()> {
    let nodes = start(1, 3 * GIB, &[]).await?;
    let (head, worker) = (&nodes[0], &nodes[1]);
    let driver = head.connect().await?;
    let demo = driver.register_file(harness::guest("demo")).await?;
    let worker_id = worker.node_id().await?;

    // Baseline (and warm-up: the worker fetches and compiles the module).
    let small = harness::touched_buffer(MIB as usize);
    let mut baseline = vec![];
    for i in 0..12 {
        let obj = driver.put_bytes(&small).await?;
        let (t, len) = view_len_on(&driver, &demo, &obj, &worker_id).await?;
        ensure!(len == MIB);
        if i >= 2 {
            baseline.push(t);
        }
    }
    let baseline_us = median_us(&baseline);
    let pulled_before = worker.this_node().await?.bytes_pulled;

    let data = harness::touched_buffer(GIB as usize);
    let obj = driver.put_bytes(&data).await?;
    drop(data);
    let (t, len) = view_len_on(&driver, &demo, &obj, &worker_id).await?;
    ensure!(len == GIB, "view_len returned {len}");
    // A second reader on the worker: the object is there now, no new pull.
    view_len_on(&driver, &demo, &obj, &worker_id).await?;
    let pulled = worker.this_node().await?.bytes_pulled - pulled_before;
    let transfer_s = (micros(t) - baseline_us).max(1.0) / 1e6;
    tracing::info!(
        task_ms = t.as_secs_f64() * 1e3,
        baseline_us,
        pulled,
        "1 GiB transfer"
    );
    Figure::new(
        format!(
            "transfer of a 1 GiB object between two nodes (two host processes, over \
             loopback TCP; pull + view_len, minus a {:.0} µs no-transfer round trip; \
             worker pulled {:.2} GiB)",
            baseline_us,
            pulled as f64 / GIB as f64
        ),
        GIB as f64 / transfer_s / 1e9,
        Unit::GBPerSec,
        Bound::AtLeast(2.0),
    )
    .print();
    ensure!(
        pulled == GIB,
        "the worker pulled {pulled} bytes, not the 1 GiB object once"
    );
    Ok(())
}

/// Readers per worker in the broadcast.
const READERS: usize = 4;

/// **Broadcast of a 256 MiB object to 3 other nodes.** A head and three
/// workers; the driver (on the head) puts 256 MiB, then submits at once
/// `READERS` `touch_view` tasks per worker (hard node affinity) and waits
/// for all. Figures: the most bytes any worker pulled over the object size
/// (each byte pulled once per node: 1.00), and the wall time from the
/// first submit to the last result.
pub async fn broadcast() -> Result<()> {
    let size = 256 * MIB;
    let nodes = start(3, GIB, &[]).await?;
    let driver = nodes[0].connect().await?;
    let demo = driver.register_file(harness::guest("demo")).await?;
    let mut workers = vec![];
    for node in &nodes[1..] {
        workers.push((node, node.node_id().await?));
    }
    // Warm-up: every worker fetches and compiles the module.
    let warm: Vec<ObjectRef> = workers
        .iter()
        .map(|(_, id)| driver.task(&demo, "noop").strategy(on(id)).submit())
        .collect::<reef::Result<_>>()?;
    driver.get_many::<()>(&warm).await?;
    let mut before = vec![];
    for (node, _) in &workers {
        before.push(node.this_node().await?.bytes_pulled);
    }

    let data = harness::touched_buffer(size as usize);
    let obj = driver.put_bytes(&data).await?;
    drop(data);
    let start = Instant::now();
    let mut refs = vec![];
    for _ in 0..READERS {
        for (_, id) in &workers {
            refs.push(
                driver
                    .task(&demo, "touch_view")
                    .arg(&obj)
                    .memory_limit(VIEW_LIMIT)
                    .strategy(on(id))
                    .submit()?,
            );
        }
    }
    let sums: Vec<u64> = driver.get_many(&refs).await?;
    let wall = start.elapsed();
    ensure!(sums.iter().all(|&s| s == sums[0]), "readers disagree");
    let mut ratios = vec![];
    for ((node, _), before) in workers.iter().zip(before) {
        let pulled = node.this_node().await?.bytes_pulled - before;
        ratios.push(pulled as f64 / size as f64);
    }
    tracing::info!(?ratios, "bytes pulled per worker / object size");
    let worst = ratios.iter().copied().fold(ratios[0], |a, b| {
        if (b - 1.0).abs() > (a - 1.0).abs() {
            b
        } else {
            a
        }
    });
    Figure::new(
        format!(
            "broadcast 256 MiB to 3 nodes ({READERS} readers each, all at once), \
             pulls per node (worst node)"
        ),
        worst,
        Unit::Times,
        Bound::Equal(1.0),
    )
    .print();
    Figure::new(
        "broadcast 256 MiB to 3 nodes, wall time (first submit to last result)",
        wall.as_secs_f64() * 1e3,
        Unit::Millis,
        Bound::Report,
    )
    .print();
    Ok(())
}

/// DAG shape: `ROOTS` roots, each feeding `FANOUT` noops (its result as argument).
const ROOTS: usize = 100;
const FANOUT: usize = 99;
const TASKS: usize = ROOTS * (1 + FANOUT);
const RUNS: usize = 3;
/// A run that takes longer than this is reported as a failure (not waited for).
const RUN_TIMEOUT: Duration = Duration::from_secs(60);

/// **Tasks/s of 10,000 trivial tasks spread over 3 nodes.** A head and two
/// workers, the driver on the head. First `TASKS` independent `noop`s with
/// `Strategy::Spread` (held to 10,000 tasks/s); then a DAG of the same
/// size (held to 50,000 tasks/s, the performance issue's target): `ROOTS` `noop` roots with `Strategy::Spread` and, for each, `FANOUT`
/// `noop`s taking the root's result as argument with the default strategy
/// (locality). All submitted without waiting, then `get_many` of all; the rate
/// is over first submit to last result, median of `RUNS` after a warm-up run.
/// The same cluster then serves the placement figures.
pub async fn dag_and_placements() -> Result<()> {
    let slots = format!("{SLOT}=1000000");
    let nodes = start(2, 256 * MIB, &["--resource", slots.as_str()]).await?;
    let driver = nodes[0].connect().await?;
    let demo = driver.register_file(harness::guest("demo")).await?;
    let run = |roots: usize, fanout: usize| {
        let (driver, demo) = (&driver, &demo);
        async move {
            let start = Instant::now();
            let mut refs = Vec::with_capacity(roots * (1 + fanout));
            for _ in 0..roots {
                let root = driver
                    .task(demo, "noop")
                    .strategy(Strategy::Spread)
                    .submit()?;
                for _ in 0..fanout {
                    refs.push(driver.task(demo, "noop").arg(&root).submit()?);
                }
                refs.push(root);
            }
            let done: Vec<()> = tokio::time::timeout(RUN_TIMEOUT, driver.get_many(&refs))
                .await
                .context("a run did not finish within 60 s")??;
            let elapsed = start.elapsed();
            ensure!(done.len() == refs.len());
            anyhow::Ok(elapsed)
        }
    };
    // Targets: the spread row the cluster issue's, the DAG the performance
    // issue's (a 10,000-task DAG over 3 nodes at 50,000 tasks/s).
    for (roots, fanout, name, target) in [
        (
            TASKS,
            0,
            format!("tasks/s of {TASKS} trivial tasks spread over 3 nodes (independent noops, Spread, one driver)"),
            10_000.0,
        ),
        (
            ROOTS,
            FANOUT,
            format!(
                "tasks/s of a DAG of {TASKS} trivial tasks over 3 nodes ({ROOTS} Spread roots x \
                 {FANOUT} dependents each, default strategy)"
            ),
            50_000.0,
        ),
    ] {
        run(roots, fanout).await?;
        let mut times = vec![];
        for _ in 0..RUNS {
            times.push(run(roots, fanout).await?);
        }
        times.sort();
        tracing::info!(?times, "run times");
        Figure::new(
            name,
            TASKS as f64 / times[RUNS / 2].as_secs_f64(),
            Unit::TasksPerSec,
            Bound::AtLeast(target),
        )
        .print();
    }

    let mut ids = vec![];
    for node in &nodes {
        ids.push(node.node_id().await?);
    }
    placements(&nodes[0], ids).await
}

/// Concurrent control-plane callers.
const CALLERS: usize = 32;

/// Runs `total` operations over `CALLERS` tasks; returns ops/s.
async fn rate<F, Fut>(total: usize, op: F) -> Result<f64>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<()>> + Send,
{
    let op = Arc::new(op);
    let start = Instant::now();
    let tasks: Vec<_> = (0..CALLERS)
        .map(|t| {
            let op = op.clone();
            tokio::spawn(async move {
                let mut i = t;
                while i < total {
                    op(i).await?;
                    i += CALLERS;
                }
                anyhow::Ok(())
            })
        })
        .collect();
    for t in tasks {
        t.await??;
    }
    Ok(total as f64 / start.elapsed().as_secs_f64())
}

fn slot() -> Option<ResourceMap> {
    Some(ResourceMap {
        amounts: [(SLOT.to_owned(), 1.0)].into(),
    })
}

const STRATEGIES: [PlacementStrategy; 4] = [
    PlacementStrategy::Pack,
    PlacementStrategy::Spread,
    PlacementStrategy::StrictPack,
    PlacementStrategy::StrictSpread,
];

/// **Placement groups created and removed per second** against the real
/// 3-node cluster's control plane
/// (`reef_gcs::GcsClient` to the head; the nodes answer its
/// ReserveBundles/ReleaseBundles). `CALLERS` concurrent callers. A group has
/// three bundles of one `bench_slot` each, the four strategies in turn;
/// each is created (must be `PG_CREATED`) then removed.
async fn placements(head: &ChildNode, node_ids: Vec<String>) -> Result<()> {
    let client =
        GcsClient::connect_lazy(&head.address, &head.node_token()?).map_err(anyhow::Error::msg)?;
    let groups = 4_000;
    let c = client.clone();
    let group_rate = rate(groups, move |i| {
        let client = c.clone();
        async move {
            let req = CreatePlacementGroupRequest {
                name: String::new(),
                strategy: STRATEGIES[i % STRATEGIES.len()] as i32,
                bundles: vec![slot().expect("some"); 3],
                node_ids: Vec::new(),
                tenant: String::new(),
            };
            let info = client.pg_create(req).await?;
            ensure!(
                info.state == PlacementGroupState::PgCreated as i32,
                "group not created: {}",
                info.error
            );
            client.pg_remove(info.id).await?;
            Ok(())
        }
    })
    .await?;
    Figure::new(
        format!(
            "placement groups created and removed per second (3 nodes, {CALLERS} callers, \
             3 bundles each)"
        ),
        group_rate,
        Unit::PerSec,
        Bound::AtLeast(2_000.0),
    )
    .print();

    let _ = node_ids;
    actor_creation(head).await
}

/// **Actor creations per second (3 nodes).** Real actors, not just control
/// plane entries: `CALLERS` concurrent callers on a driver connected to the
/// head each create `Accumulator`s with `Strategy::Spread` (placed by the
/// control plane, instantiated on their node) and wait for each one's first
/// call (so it is alive). Timed in waves of `WAVE` actors (as many as the
/// nodes' instance pools hold comfortably); each wave is killed, untimed,
/// before the next.
async fn actor_creation(head: &ChildNode) -> Result<()> {
    const WAVE: usize = 1_500;
    const WAVES: usize = 4;
    let driver = head.connect().await?;
    let demo = Arc::new(driver.register_file(harness::guest("demo")).await?);
    let mut timed = Duration::ZERO;
    for wave in 0..WAVES {
        let made = Arc::new(std::sync::Mutex::new(Vec::with_capacity(WAVE)));
        let (d, m, out) = (driver.clone(), demo.clone(), made.clone());
        let per_sec = rate(WAVE, move |i| {
            let (driver, demo, out) = (d.clone(), m.clone(), out.clone());
            async move {
                let acc = driver
                    .actor(&demo, "Accumulator")
                    .arg(i as f64)
                    .strategy(Strategy::Spread)
                    .create()
                    .await?;
                let total = acc.call("total").submit()?;
                ensure!(driver.get::<f64>(&total).await? == i as f64);
                out.lock().unwrap().push(acc);
                Ok(())
            }
        })
        .await?;
        timed += Duration::from_secs_f64(WAVE as f64 / per_sec);
        let actors = std::mem::take(&mut *made.lock().unwrap());
        let kills: Vec<_> = actors
            .into_iter()
            .map(|a| tokio::spawn(async move { a.kill().await }))
            .collect();
        for k in kills {
            k.await??;
        }
        tracing::info!(wave, per_sec, "actor wave");
    }
    let actor_rate = (WAVE * WAVES) as f64 / timed.as_secs_f64();
    Figure::new(
        format!(
            "actors created per second (3 nodes, Spread, {CALLERS} callers; create until first call answered)"
        ),
        actor_rate,
        Unit::PerSec,
        Bound::AtLeast(2_000.0),
    )
    .print();
    Ok(())
}
