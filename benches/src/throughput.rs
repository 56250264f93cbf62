//! Figures 2 and 3: asynchronous throughput of trivial tasks and of actor
//! calls, from one driver.

use std::time::{Duration, Instant};

use anyhow::{ensure, Result};
use reef::{Cluster, Module, ObjectRef};

use crate::report::{Bound, Figure, Unit};

/// Tasks (or calls) per measured run.
pub const N: usize = 50_000;
/// Measured runs; the figure is their median.
pub const RUNS: usize = 3;

/// **Async task throughput.** Submit `N` `noop()` tasks without waiting,
/// then `get_many` all their results; the rate is `N` over the time from
/// the first submit to the last result. Median of `RUNS` runs after a
/// warm-up run; results are released outside the timed region.
pub async fn tasks(cluster: &Cluster, demo: &Module) -> Result<()> {
    let times = task_run_times(cluster, demo, N, RUNS).await?;
    Figure::new(
        format!("async task throughput ({N} noop tasks, one driver)"),
        rate(N, &times),
        Unit::TasksPerSec,
        Bound::AtLeast(100_000.0),
    )
    .print();
    Ok(())
}

/// The times of `runs` runs of `n` async `noop()` tasks, after a warm-up run.
pub async fn task_run_times(
    cluster: &Cluster,
    demo: &Module,
    n: usize,
    runs: usize,
) -> Result<Vec<Duration>> {
    task_run(cluster, demo, n).await?;
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        times.push(task_run(cluster, demo, n).await?);
    }
    Ok(times)
}

/// One run: `n` async `noop()` tasks submitted, then all their results got;
/// the time from the first submit to the last result.
pub async fn task_run(cluster: &Cluster, demo: &Module, n: usize) -> Result<Duration> {
    let start = Instant::now();
    let refs = (0..n)
        .map(|_| cluster.task(demo, "noop").submit())
        .collect::<reef::Result<Vec<ObjectRef>>>()?;
    let done: Vec<()> = cluster.get_many(&refs).await?;
    let elapsed = start.elapsed();
    ensure!(done.len() == n);
    // Results are released here, outside the timed region.
    drop(refs);
    Ok(elapsed)
}

/// **Async actor calls.** One `Accumulator` actor; submit `N` calls of
/// `add(1.0)` without waiting, then `get_many` all results; the rate is `N`
/// over the time from the first submit to the last result. Median of `RUNS`
/// runs after a warm-up run. The last result checks that every call ran in order.
pub async fn actor_calls(cluster: &Cluster, demo: &Module) -> Result<()> {
    let times = actor_call_run_times(cluster, demo, N, RUNS).await?;
    Figure::new(
        format!("async actor calls ({N} calls, one driver, one actor)"),
        rate(N, &times),
        Unit::CallsPerSec,
        Bound::AtLeast(30_000.0),
    )
    .print();
    Ok(())
}

/// The times of `runs` runs of `n` async actor calls, after a warm-up run.
pub async fn actor_call_run_times(
    cluster: &Cluster,
    demo: &Module,
    n: usize,
    runs: usize,
) -> Result<Vec<Duration>> {
    let acc = cluster.actor(demo, "Accumulator").create().await?;
    let mut total = 0.0;
    let mut run = || {
        let acc = &acc;
        total += n as f64;
        let expected = total;
        async move {
            let start = Instant::now();
            let refs = (0..n)
                .map(|_| acc.call("add").arg(1.0).submit())
                .collect::<reef::Result<Vec<ObjectRef>>>()?;
            let totals: Vec<f64> = cluster.get_many(&refs).await?;
            let elapsed = start.elapsed();
            ensure!(totals.last() == Some(&expected), "calls ran out of order");
            anyhow::Ok(elapsed)
        }
    };
    run().await?;
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        times.push(run().await?);
    }
    acc.kill().await?;
    Ok(times)
}

/// `n` over the median run time.
pub fn rate(n: usize, times: &[Duration]) -> f64 {
    let mut times = times.to_vec();
    times.sort();
    tracing::info!(?times, "run times");
    n as f64 / times[times.len() / 2].as_secs_f64()
}
