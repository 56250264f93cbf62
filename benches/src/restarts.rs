//! Actor restart latency: from the failure to the first call the restarted
//! actor answers. Two causes: its instance traps (restarted in place on its
//! node), and its node is SIGKILLed (the control plane declares it dead
//! after `--node-timeout-ms`, and the actor is placed again on another
//! node). Real `host` processes on 127.0.0.1; the `nested` guest's `Counter`.

use std::time::{Duration, Instant};

use anyhow::{ensure, Result};
use reef::{Cluster, Strategy};

use crate::cluster::start;
use crate::harness::{self, MIB};
use crate::report::{median_us, Bound, Figure, Unit};

/// The bench cluster's node timeout (head option), which a node-death
/// restart waits out first.
const NODE_TIMEOUT_MS: u64 = 1_000;
const TRAPS: usize = 30;

pub async fn actor_restart() -> Result<()> {
    trap().await?;
    node_kill().await
}

/// **Trap → first answered call**, median of `TRAPS`: `crash` traps the
/// instance; the `add` queued behind it is answered by a new instance once
/// `actor-init` ran again (the time includes the trapping call itself).
async fn trap() -> Result<()> {
    let nodes = start(0, 64 * MIB, &[]).await?;
    let driver = nodes[0].connect().await?;
    let m = driver.register_file(harness::guest("nested")).await?;
    let counter = driver
        .actor(&m, "Counter")
        .arg(1.0)
        .max_restarts(-1)
        .create()
        .await?;
    let mut samples = Vec::with_capacity(TRAPS);
    for _ in 0..TRAPS {
        let start = Instant::now();
        let crash = counter.call("crash").submit()?;
        let add = counter.call("add").arg(1.0).submit()?;
        let total: f64 = driver.get(&add).await?;
        samples.push(start.elapsed());
        ensure!(
            total == 2.0,
            "the restarted actor's total is {total}, not 2"
        );
        ensure!(driver.get::<f64>(&crash).await.is_err());
    }
    Figure::new(
        "actor restart latency, instance trap → first answered call (median)",
        median_us(&samples) / 1_000.0,
        Unit::Millis,
        Bound::AtMost(20.0),
    )
    .print();
    Ok(())
}

/// **Node SIGKILL → first answered call**: an actor lives on a worker that
/// is killed; a call made right after the kill (lost with the node, retried:
/// `max_task_retries`) is answered by the actor placed again on the head.
async fn node_kill() -> Result<()> {
    let timeout = NODE_TIMEOUT_MS.to_string();
    let mut nodes = start(1, 64 * MIB, &["--node-timeout-ms", &timeout]).await?;
    let driver = nodes[0].connect().await?;
    let m = driver.register_file(harness::guest("nested")).await?;
    let worker = nodes[1].node_id().await?;
    let counter = driver
        .actor(&m, "Counter")
        .arg(1.0)
        .strategy(Strategy::NodeAffinity {
            node_id: worker,
            soft: true,
        })
        .max_restarts(1)
        .max_task_retries(-1)
        .create()
        .await?;
    ensure!(first_call(&driver, &counter).await? == 2.0);
    nodes[1].kill()?;
    let killed = Instant::now();
    let total = first_call(&driver, &counter).await?;
    let latency = killed.elapsed();
    ensure!(
        total == 2.0,
        "the restarted actor's total is {total}, not 2"
    );
    Figure::new(
        format!(
            "actor restart latency, node SIGKILL → first answered call (node timeout {NODE_TIMEOUT_MS} ms)"
        ),
        latency.as_secs_f64() * 1_000.0,
        Unit::Millis,
        Bound::AtMost(NODE_TIMEOUT_MS as f64 + 500.0),
    )
    .print();
    Ok(())
}

/// One `add(1)` call, waited for (within 30 s).
async fn first_call(driver: &Cluster, counter: &reef::ActorHandle) -> Result<f64> {
    let r = counter.call("add").arg(1.0).submit()?;
    Ok(tokio::time::timeout(Duration::from_secs(30), driver.get::<f64>(&r)).await??)
}
