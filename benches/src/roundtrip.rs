//! Figure 1: the synchronous round trip of a trivial task (and, for
//! `make bench-ray`, of a trivial actor call).

use std::time::{Duration, Instant};

use anyhow::{ensure, Result};
use reef::{Cluster, Module};

use crate::report::{median_us, percentile_us, Bound, Figure, Unit};

pub const WARMUP: usize = 300;
pub const CALLS: usize = 2_000;

/// **Sync task round trip.** One driver submits `noop()` to a local node (a
/// child `host` process) and waits for its result before the next call;
/// the figure is the median over `CALLS` calls, each timed from `submit`
/// to the decoded result. Covers the driver's batching writer, loopback
/// gRPC both ways, scheduling, a fresh pooled instance and the result object.
pub async fn sync_task(cluster: &Cluster, demo: &Module) -> Result<()> {
    let samples = sync_task_samples(cluster, demo, WARMUP, CALLS).await?;
    tracing::info!(
        p10 = percentile_us(&samples, 0.1),
        p90 = percentile_us(&samples, 0.9),
        p99 = percentile_us(&samples, 0.99),
        session_ping_median = session_ping_us(cluster).await?,
        "sync task round trip (µs)"
    );
    Figure::new(
        "sync task round trip (median)",
        median_us(&samples),
        Unit::Micros,
        Bound::AtMost(60.0),
    )
    .print();
    Ok(())
}

/// `calls` sync round trips of `noop()` after `warmup` untimed ones.
pub async fn sync_task_samples(
    cluster: &Cluster,
    demo: &Module,
    warmup: usize,
    calls: usize,
) -> Result<Vec<Duration>> {
    let mut samples: Vec<Duration> = Vec::with_capacity(calls);
    for i in 0..warmup + calls {
        let start = Instant::now();
        let r = cluster.task(demo, "noop").submit()?;
        cluster.get::<()>(&r).await?;
        if i >= warmup {
            samples.push(start.elapsed());
        }
    }
    Ok(samples)
}

/// **Sync actor call.** One `Accumulator` actor; `calls` calls of `add(1.0)`,
/// each waited for before the next (after `warmup` untimed ones), timed from
/// `submit` to the decoded result. The last total checks every call ran.
pub async fn sync_actor_samples(
    cluster: &Cluster,
    demo: &Module,
    warmup: usize,
    calls: usize,
) -> Result<Vec<Duration>> {
    let acc = cluster.actor(demo, "Accumulator").create().await?;
    let mut samples: Vec<Duration> = Vec::with_capacity(calls);
    let mut total = 0.0;
    for i in 0..warmup + calls {
        let start = Instant::now();
        let r = acc.call("add").arg(1.0).submit()?;
        total = cluster.get::<f64>(&r).await?;
        if i >= warmup {
            samples.push(start.elapsed());
        }
    }
    acc.kill().await?;
    ensure!(total == (warmup + calls) as f64, "an actor call was lost");
    Ok(samples)
}

/// The driver ↔ node floor of every round trip: a `wait` for no objects,
/// which the node answers at once (median of `CALLS`, in µs).
async fn session_ping_us(cluster: &Cluster) -> Result<f64> {
    let mut samples: Vec<Duration> = Vec::with_capacity(CALLS);
    for i in 0..WARMUP + CALLS {
        let start = Instant::now();
        cluster.wait(&[], 0, None).await?;
        if i >= WARMUP {
            samples.push(start.elapsed());
        }
    }
    Ok(median_us(&samples))
}
