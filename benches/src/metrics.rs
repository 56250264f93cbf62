//! What metrics cost: the `throughput` group's async task workload on two
//! nodes started at once, one counting metrics (the default) and one
//! started with `--no-metrics`, measured in alternating runs so that a
//! change of the machine's load falls on both.

use std::time::Duration;

use anyhow::Result;
use reef::{Cluster, Module};

use crate::harness::{self, ChildNode};
use crate::report::{Bound, Figure, Unit};
use crate::throughput::{rate, task_run, N};

/// Measured runs on each node; the figures are their medians.
pub const ROUNDS: usize = 5;

/// **Metrics overhead on async task throughput.** Two head nodes (same
/// options, no dashboard), one with `--no-metrics`; a warm-up run on each,
/// then `ROUNDS` rounds of one run on each, the order swapped every round.
/// A run is `N` `noop()` tasks submitted without waiting, then `get_many`
/// (as in the throughput figure). The overhead is the share of the
/// metrics-off median rate lost with metrics on (negative: noise in favour
/// of metrics).
pub async fn overhead() -> Result<()> {
    let common = ["--object-store-memory", "256MiB", "--no-dashboard"];
    let on_node = ChildNode::start(&common)?;
    let off_node = ChildNode::start(&[&common[..], &["--no-metrics"]].concat())?;
    let on = Side::connect(&on_node).await?;
    let off = Side::connect(&off_node).await?;
    task_run(&on.cluster, &on.demo, N).await?;
    task_run(&off.cluster, &off.demo, N).await?;
    let (mut on_times, mut off_times) = (Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        let (first, second, first_times, second_times) = if round % 2 == 0 {
            (&on, &off, &mut on_times, &mut off_times)
        } else {
            (&off, &on, &mut off_times, &mut on_times)
        };
        first_times.push(first.run().await?);
        second_times.push(second.run().await?);
    }
    let (on_rate, off_rate) = (rate(N, &on_times), rate(N, &off_times));
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    tracing::info!(
        ?on_times,
        ?off_times,
        load = load.trim(),
        "metrics overhead runs"
    );
    let runs = format!("{N} noop tasks, median of {ROUNDS} alternating runs");
    Figure::new(
        format!("async task throughput, metrics on ({runs})"),
        on_rate,
        Unit::TasksPerSec,
        Bound::Report,
    )
    .print();
    Figure::new(
        format!("async task throughput, --no-metrics ({runs})"),
        off_rate,
        Unit::TasksPerSec,
        Bound::Report,
    )
    .print();
    Figure::new(
        "metrics overhead on async task throughput",
        (off_rate - on_rate) / off_rate * 100.0,
        Unit::Percent,
        Bound::AtMost(5.0),
    )
    .print();
    Ok(())
}

/// One node's driver and its `demo` module.
struct Side {
    cluster: Cluster,
    demo: Module,
}

impl Side {
    async fn connect(node: &ChildNode) -> Result<Side> {
        harness::wait_allocated(&harness::arena_of(&node.address)?).await?;
        let cluster = node.connect().await?;
        let demo = cluster.register_file(harness::guest("demo")).await?;
        Ok(Side { cluster, demo })
    }

    async fn run(&self) -> Result<Duration> {
        task_run(&self.cluster, &self.demo, N).await
    }
}
