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

/// Rounds of one measured run on each node; the figures are medians.
pub const ROUNDS: usize = 10;

/// **Metrics overhead on async task throughput.** Two head nodes (same
/// options, no dashboard), one with `--no-metrics`; a warm-up run on each,
/// then `ROUNDS` rounds of one run on each, the order swapped every round.
/// A run is `N` `noop()` tasks submitted without waiting, then `get_many`
/// (as in the throughput figure); each node's rate is `N` over its median
/// run time. The overhead is the median over rounds of the share of the
/// metrics-off rate lost with metrics on in that round: the two runs of a
/// round are back to back, so a change of the machine's load between
/// rounds cancels out (negative: noise in favour of metrics).
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
    let mut lost: Vec<f64> = on_times
        .iter()
        .zip(&off_times)
        .map(|(on, off)| (1.0 - off.as_secs_f64() / on.as_secs_f64()) * 100.0)
        .collect();
    lost.sort_by(f64::total_cmp);
    let overhead = lost[lost.len() / 2];
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    tracing::info!(
        ?on_times,
        ?off_times,
        load = load.trim(),
        "metrics overhead runs"
    );
    let runs = format!("{N} noop tasks, median of {ROUNDS} runs alternating with the other");
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
        format!("metrics overhead on async task throughput (median of {ROUNDS} paired rounds)"),
        overhead,
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
        harness::wait_steady(&harness::arena_of(&node.address)?).await?;
        let cluster = node.connect().await?;
        let demo = cluster.register_file(harness::guest("demo")).await?;
        Ok(Side { cluster, demo })
    }

    async fn run(&self) -> Result<Duration> {
        task_run(&self.cluster, &self.demo, N).await
    }
}
