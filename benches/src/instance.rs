//! Figure 4: the cost of the fresh instance every task runs in.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use reef_host::guest::exec;
use reef_host::module::Module;
use reef_host::node::Node;
use reef_host::spec::Limits;
use reef_host::spec::TaskSpec;
use tokio_util::sync::CancellationToken;

use crate::report::{median_us, percentile_us, Bound, Figure, Unit};

const WARMUP: usize = 500;
const ITERATIONS: usize = 5_000;

/// **Fresh-instance start.** In-process, with the node's own engine (pooling
/// allocator, copy-on-write memory images) and the demo module's
/// `InstancePre`: time `exec::new_store` + `exec::instantiate` + dropping
/// the store (which returns the slot to the pool and resets its memory);
/// median over `ITERATIONS`. Then the same plus one `run-task("noop")` call
/// and the store's `finish` (what a task's guest part costs end to end).
pub async fn fresh_instance(node: &Arc<Node>, demo: &Arc<Module>) -> Result<()> {
    let limits = Limits {
        memory_bytes: node.config.default_memory_limit,
        cpu_time_ms: node.config.default_cpu_time_ms,
    };
    let start_only = || async {
        let start = Instant::now();
        let mut store = exec::new_store(node.host(), demo, limits, CancellationToken::new());
        exec::instantiate(&mut store, demo).await?;
        drop(store);
        anyhow::Ok(start.elapsed())
    };
    let with_noop = || async {
        let start = Instant::now();
        let mut store = exec::new_store(node.host(), demo, limits, CancellationToken::new());
        let instance = exec::instantiate(&mut store, demo).await?;
        let export = &demo.exports.run_task;
        exec::call_output(&mut store, &instance, export, "noop", &[]).await?;
        store.data_mut().finish();
        drop(store);
        anyhow::Ok(start.elapsed())
    };

    let mut starts: Vec<Duration> = Vec::with_capacity(ITERATIONS);
    let mut calls: Vec<Duration> = Vec::with_capacity(ITERATIONS);
    for _ in 0..WARMUP {
        start_only().await?;
        with_noop().await?;
    }
    // Interleaved, so both see the same machine.
    let faults = minor_faults();
    for _ in 0..ITERATIONS {
        starts.push(start_only().await?);
        calls.push(with_noop().await?);
    }
    let faults_per_instance = (minor_faults() - faults) as f64 / (2 * ITERATIONS) as f64;
    tracing::info!(
        p90_start = percentile_us(&starts, 0.9),
        p90_call = percentile_us(&calls, 0.9),
        faults_per_instance,
        noop_task_median = noop_task_us(node, demo).await?,
        "fresh instance (µs)"
    );
    Figure::new(
        "fresh-instance start per task (new store + instantiate + drop, median)",
        median_us(&starts),
        Unit::Micros,
        Bound::AtMost(20.0),
    )
    .print();
    Figure::new(
        "fresh instance + one noop call (median)",
        median_us(&calls),
        Unit::Micros,
        Bound::AtMost(20.0),
    )
    .print();
    Ok(())
}

/// A whole `noop()` task in-process, from `Tasks::submit` to its sealed
/// result (median of `ITERATIONS`, in µs): the node's share of a round trip.
async fn noop_task_us(node: &Arc<Node>, demo: &Module) -> Result<f64> {
    let mut samples: Vec<Duration> = Vec::with_capacity(ITERATIONS);
    for i in 0..WARMUP + ITERATIONS {
        let return_id = node.objects.new_object_id();
        let start = Instant::now();
        node.tasks.submit(TaskSpec {
            return_id,
            module: demo.hash.clone(),
            function: "noop".into(),
            args: vec![],
            options: Default::default(),
            owner: None,
            strategy: Default::default(),
            hops: 0,
            tenant: Default::default(),
        })?;
        node.store().get(return_id).await?;
        if i >= WARMUP {
            samples.push(start.elapsed());
        }
        node.store().release(return_id);
    }
    Ok(median_us(&samples))
}

/// Minor page faults of this process so far.
fn minor_faults() -> i64 {
    // SAFETY: getrusage fills the zeroed struct we own.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: a valid `who` and out-pointer.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    usage.ru_minflt
}
