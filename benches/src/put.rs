//! Figure 7: a driver's `put` of 1 GiB on the node's machine.

use std::time::{Duration, Instant};

use anyhow::{ensure, Result};
use reef::Cluster;

use crate::harness::ChildNode;
use crate::report::{percentile_us, Bound, Figure, Unit};

pub const RUNS: usize = 5;

/// **Same-machine `put` of 1 GiB.** `Cluster::put_bytes` of a pre-touched
/// 1 GiB buffer into a node on the driver's machine: the node copies the
/// bytes out of the driver's memory straight into its arena
/// (`CreateBuffer.copy_from`, one `process_vm_readv`; the driver maps no
/// memory of the node). The object is released between runs so the next
/// put reuses the space. Figure: 1 GiB (10^9-byte GB) over the
/// median put time of `RUNS`.
pub async fn same_machine(cluster: &Cluster, data: &[u8]) -> Result<()> {
    ensure!(
        cluster.is_same_machine(),
        "the driver does not use shared-memory segments"
    );
    let times = puts(cluster, data, RUNS).await?;
    Figure::new(
        "same-machine driver put of 1 GiB (copied in by the node, median)",
        gb_per_s(data.len(), &times),
        Unit::GBPerSec,
        Bound::AtLeast(5.0),
    )
    .print();
    let (first, again) = gets(cluster, data).await?;
    Figure::new(
        "same-machine driver first get of 1 GiB (moved into a sealed segment, mapped, median)",
        gb_per_s(data.len(), &first),
        Unit::GBPerSec,
        Bound::AtLeast(1.0),
    )
    .print();
    Figure::new(
        "same-machine driver get of 1 GiB read before (maps the same segment: zero-copy, median)",
        percentile_us(&again, 0.5),
        Unit::Micros,
        Bound::AtMost(1000.0),
    )
    .print();
    Ok(())
}

/// **Same-machine `get` of 1 GiB.** `Cluster::get_bytes` of an object the
/// driver put (the node copied it into its arena). The first get moves it
/// into a sealed segment of its own and hands its descriptor to the
/// session; the driver maps it read-only. Every later get maps that same
/// segment. `RUNS` objects, each got once (first) and then `RUNS` times
/// (again), every value dropped before the next get, each object released
/// before the next put. Returns (first gets, later gets).
async fn gets(cluster: &Cluster, data: &[u8]) -> Result<(Vec<Duration>, Vec<Duration>)> {
    let (mut first, mut again) = (Vec::new(), Vec::new());
    for _ in 0..RUNS {
        let obj = cluster.put_bytes(data).await?;
        for n in 0..=RUNS {
            let start = Instant::now();
            let got = cluster.get_bytes(&obj).await?;
            let took = start.elapsed();
            ensure!(got.is_zero_copy() && got.len() == data.len(), "not mapped");
            if n == 0 {
                first.push(took);
            } else {
                again.push(took);
            }
        }
    }
    tracing::info!(?first, ?again, "gets of {} bytes", data.len());
    Ok((first, again))
}

/// **The socket alternative.** The same put to a node whose inline
/// threshold is above 1 GiB, so the driver sends the bytes in its gRPC
/// stream and the node stores them on its heap: what a driver on another
/// machine (or without the arena mapping) pays, minus the network. One put
/// (it takes seconds).
pub async fn over_socket(data: &[u8]) -> Result<()> {
    let node = ChildNode::start(&[
        "--inline-threshold",
        "2GiB",
        "--object-store-memory",
        "64MiB",
    ])?;
    let cluster = node.connect().await?;
    let times = puts(&cluster, data, 1).await?;
    Figure::alternative(
        "same-machine driver put of 1 GiB (copy: inline over the gRPC socket, one put)",
        gb_per_s(data.len(), &times),
        Unit::GBPerSec,
        Bound::AtLeast(5.0),
    )
    .print();
    Ok(())
}

/// `runs` puts of `data`, each released before the next.
pub async fn puts(cluster: &Cluster, data: &[u8], runs: usize) -> Result<Vec<Duration>> {
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let start = Instant::now();
        let obj = cluster.put_bytes(data).await?;
        times.push(start.elapsed());
        drop(obj);
    }
    tracing::info!(?times, "puts of {} bytes", data.len());
    Ok(times)
}

/// `len` bytes (in 10^9-byte GB) over the median of `times`.
pub fn gb_per_s(len: usize, times: &[Duration]) -> f64 {
    len as f64 / 1e9 / (percentile_us(times, 0.5) / 1e6)
}
