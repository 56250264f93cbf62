//! Figure 1: the synchronous round trip of a trivial task.

use std::time::{Duration, Instant};

use anyhow::Result;
use reef::{Cluster, Module};

use crate::report::{median_us, percentile_us, Bound, Figure, Unit};

const WARMUP: usize = 300;
const CALLS: usize = 2_000;

/// **Sync task round trip.** One driver submits `noop()` to a local node (a
/// child `host` process) and waits for its result before the next call;
/// the figure is the median over `CALLS` calls, each timed from `submit`
/// to the decoded result. Covers the driver's batching writer, loopback
/// gRPC both ways, scheduling, a fresh pooled instance and the result object.
pub async fn sync_task(cluster: &Cluster, demo: &Module) -> Result<()> {
    for _ in 0..WARMUP {
        let r = cluster.task(demo, "noop").submit()?;
        cluster.get::<()>(&r).await?;
    }
    let mut samples: Vec<Duration> = Vec::with_capacity(CALLS);
    for _ in 0..CALLS {
        let start = Instant::now();
        let r = cluster.task(demo, "noop").submit()?;
        cluster.get::<()>(&r).await?;
        samples.push(start.elapsed());
    }
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
        Bound::AtMost(200.0),
    )
    .ray("5.8 ms")
    .print();
    Ok(())
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
