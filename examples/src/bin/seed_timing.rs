//! Times the seed demo as a user sees it: a 64 MiB array of f64 put once,
//! four tasks summing disjoint quarters through zero-copy views, `get` of the
//! four sums; median of `REEF_RUNS` (default 20) after 3 warm-ups, the object
//! already stored. Guests alternate run by run (the machine may be noisy).
//! Then the same for a 1 GiB array over 64 tasks (default 5 runs;
//! `REEF_MAP_REDUCE=0` skips it), and beside both the host-native floor: Rust loops summing the same
//! arena bytes (the driver's zero-copy `get`), one thread.
//!
//! ```sh
//! cargo run --release -p reef-examples --bin seed_timing [GUEST...]   # default: demo c_demo
//! ```

use std::time::{Duration, Instant};

use anyhow::{ensure, Result};
use reef::{Cluster, Module, ObjectRef};
use reef_examples::{cluster, guest};

const WARMUPS: usize = 3;

struct Workload {
    label: &'static str,
    /// Measured runs unless `REEF_RUNS` says otherwise.
    runs: usize,
    elements: u64,
    tasks: u64,
    /// Guest memory limit of each task: every task maps the whole object.
    memory_limit: u64,
}

const SEED: Workload = Workload {
    label: "seed demo (64 MiB, 4 tasks)",
    runs: 20,
    elements: 8_000_000,
    tasks: 4,
    memory_limit: 256 << 20,
};
const MAP_REDUCE: Workload = Workload {
    label: "map/reduce (1 GiB, 64 tasks)",
    runs: 5,
    elements: 1 << 27,
    tasks: 64,
    memory_limit: 1536 << 20,
};

#[tokio::main]
async fn main() -> Result<()> {
    let mut names: Vec<String> = std::env::args().skip(1).collect();
    if names.is_empty() {
        names = vec!["demo".into(), "c_demo".into()];
    }
    let runs: Option<usize> = std::env::var("REEF_RUNS").ok().and_then(|s| s.parse().ok());
    let cluster = cluster().await?;
    let mut modules = Vec::new();
    for name in &names {
        modules.push((name.clone(), cluster.register_file(guest(name)).await?));
    }
    let mut workloads = vec![SEED];
    if std::env::var("REEF_MAP_REDUCE").as_deref() != Ok("0") {
        workloads.push(MAP_REDUCE);
    }
    for w in workloads {
        let runs = runs.unwrap_or(w.runs);
        run_workload(&cluster, &modules, &w, runs).await?;
    }
    Ok(())
}

async fn run_workload(
    cluster: &Cluster,
    modules: &[(String, Module)],
    w: &Workload,
    runs: usize,
) -> Result<()> {
    let xs: Vec<f64> = (0..w.elements).map(|i| i as f64).collect();
    let expected: f64 = xs.iter().sum();
    let data = cluster.put_f64s(&xs).await?;
    drop(xs);

    // Per guest: the workload's tasks, and one task over the whole array (the
    // guest's compute on one core, beside the native loops below).
    let variants = [w.tasks, 1];
    let mut times = vec![Vec::with_capacity(runs); modules.len() * variants.len()];
    for i in 0..WARMUPS + runs {
        for (k, (_, module)) in modules.iter().enumerate() {
            for (v, &tasks) in variants.iter().enumerate() {
                let start = Instant::now();
                let total = sum_by_tasks(cluster, module, &data, w, tasks).await?;
                let took = start.elapsed();
                ensure!(
                    (total - expected).abs() <= expected * 1e-12,
                    "wrong total {total} (expected {expected})"
                );
                if i >= WARMUPS {
                    times[k * variants.len() + v].push(took);
                }
            }
        }
    }
    println!("{}:", w.label);
    for (k, (name, _)) in modules.iter().enumerate() {
        for (v, &tasks) in variants.iter().enumerate() {
            let t = &mut times[k * variants.len() + v];
            t.sort();
            println!(
                "  {name:>10}: median {:7.2} ms  best {:7.2} ms  ({tasks} task{})",
                ms(t[t.len() / 2]),
                ms(t[0]),
                if tasks == 1 { "" } else { "s" }
            );
        }
    }
    if let Some((plain, split)) = native_floor(cluster, &data, w, runs).await? {
        println!(
            "  {:>10}: median {:7.2} ms  (host-native, one thread, plain loop over the arena bytes)",
            "native",
            ms(plain)
        );
        println!(
            "  {:>10}: median {:7.2} ms  (host-native, one thread, eight partial sums)",
            "native8",
            ms(split)
        );
    }
    Ok(())
}

/// One run: `tasks` tasks each summing its share, then `get` of all sums.
async fn sum_by_tasks(
    cluster: &Cluster,
    module: &Module,
    data: &ObjectRef,
    w: &Workload,
    tasks: u64,
) -> Result<f64> {
    let share = w.elements / tasks;
    let parts = (0..tasks)
        .map(|t| {
            let end = if t + 1 == tasks {
                w.elements
            } else {
                (t + 1) * share
            };
            cluster
                .task(module, "sum_slice")
                .arg(data)
                .arg(t * share)
                .arg(end)
                .memory_limit(w.memory_limit)
                .submit()
        })
        .collect::<reef::Result<Vec<_>>>()?;
    let sums: Vec<f64> = cluster.get_many(&parts).await?;
    Ok(sums.iter().sum())
}

/// Median times of two native loops summing the object's bytes in the node's
/// arena, one thread: a plain `iter().sum()` (one chain of dependent additions)
/// and one with eight partial sums (as the guest SDKs' `sum`; memory-bound).
async fn native_floor(
    cluster: &Cluster,
    data: &ObjectRef,
    w: &Workload,
    runs: usize,
) -> Result<Option<(Duration, Duration)>> {
    let bytes = cluster.get_bytes(data).await?;
    let Some(xs) = bytes.as_f64s().filter(|_| bytes.is_zero_copy()) else {
        return Ok(None);
    };
    let share = xs.len().div_ceil(w.tasks as usize);
    let time = |f: fn(&[f64]) -> f64| {
        let mut times = Vec::with_capacity(runs);
        for i in 0..WARMUPS + runs {
            let start = Instant::now();
            let total: f64 = xs.chunks(share).map(f).sum();
            let took = start.elapsed();
            std::hint::black_box(total);
            if i >= WARMUPS {
                times.push(took);
            }
        }
        times.sort();
        times[times.len() / 2]
    };
    Ok(Some((time(|c| c.iter().sum()), time(sum8))))
}

/// Sum with eight independent partial sums.
fn sum8(xs: &[f64]) -> f64 {
    let mut p = [0.0; 8];
    let mut chunks = xs.chunks_exact(8);
    for c in &mut chunks {
        for k in 0..8 {
            p[k] += c[k];
        }
    }
    p.iter().sum::<f64>() + chunks.remainder().iter().sum::<f64>()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
