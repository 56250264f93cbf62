//! Figures 7b: a driver on another machine puts and gets 1 GiB, measured on
//! one machine over loopback TCP with the same-machine path (the mapped
//! arena, the Unix socket) turned off: the bytes go over raw connections to
//! the node's port.

use std::time::{Duration, Instant};

use anyhow::{ensure, Result};
use reef::{Cluster, ConnectOptions};

use crate::harness::ChildNode;
use crate::put::{gb_per_s, puts, RUNS};
use crate::report::{Bound, Figure, Unit};

/// **Remote `put` and `get` of 1 GiB.** `Cluster::put_bytes` of a
/// pre-touched 1 GiB buffer, released between runs; then `get_bytes` of one
/// stored 1 GiB object into a fresh buffer, dropped between runs. Figures:
/// 1 GiB (10^9-byte GB) over the median time of `RUNS`.
pub async fn figures(data: &[u8]) -> Result<()> {
    let node = ChildNode::start(&["--object-store-memory", "1536MiB"])?;
    // After allocating, the node collapses its arena into 2 MiB pages in the
    // background (seconds of copying for 1.5 GiB): let it finish.
    reef_testkit::arena::wait_huge_pages(&node.address).await?;
    let options = ConnectOptions::default()
        .token(&node.token()?)
        .same_machine(false);
    let cluster = Cluster::connect_with(&node.address, options).await?;
    ensure!(
        !cluster.is_same_machine(),
        "the driver uses shared-memory segments"
    );
    let times = puts(&cluster, data, RUNS).await?;
    Figure::new(
        "remote driver put of 1 GiB (loopback TCP, same-machine path off, median)",
        gb_per_s(data.len(), &times),
        Unit::GBPerSec,
        Bound::AtLeast(1.0),
    )
    .print();
    let times = gets(&cluster, data, RUNS).await?;
    Figure::new(
        "remote driver get of 1 GiB (loopback TCP, same-machine path off, median)",
        gb_per_s(data.len(), &times),
        Unit::GBPerSec,
        Bound::AtLeast(1.0),
    )
    .print();
    Ok(())
}

/// `runs` gets of one stored copy of `data`, each into a fresh buffer.
pub async fn gets(cluster: &Cluster, data: &[u8], runs: usize) -> Result<Vec<Duration>> {
    let obj = cluster.put_bytes(data).await?;
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let start = Instant::now();
        let back = cluster.get_bytes(&obj).await?;
        times.push(start.elapsed());
        ensure!(back.len() == data.len(), "got {} bytes", back.len());
    }
    tracing::info!(?times, "gets of {} bytes", data.len());
    Ok(times)
}
