//! One-node dispatch figures that `make bench-ray` sets beside Ray's (whose
//! local instance is one node): actor creation and a DAG of trivial tasks.
//! Their 3-node counterparts are in `cluster`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use reef::{Cluster, Module};

/// A run that takes longer than this is reported as a failure (not waited for).
const RUN_TIMEOUT: Duration = Duration::from_secs(120);

/// **Actor creations.** `n` `Accumulator(i)` actors created at once (default
/// options) on the driver's cluster, timed until each one's first call
/// (`total`) has answered; each batch is killed, untimed, before the next.
/// The times of `runs` batches.
pub async fn actor_creation_times(
    cluster: &Cluster,
    demo: &Module,
    n: usize,
    runs: usize,
) -> Result<Vec<Duration>> {
    let demo = Arc::new(demo.clone());
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let start = Instant::now();
        let mut creations = tokio::task::JoinSet::new();
        for i in 0..n {
            let (cluster, demo) = (cluster.clone(), demo.clone());
            creations.spawn(async move {
                let acc = cluster
                    .actor(&demo, "Accumulator")
                    .arg(i as f64)
                    .create()
                    .await?;
                let total = acc.call("total").submit()?;
                ensure!(cluster.get::<f64>(&total).await? == i as f64);
                anyhow::Ok(acc)
            });
        }
        let mut actors = Vec::with_capacity(n);
        while let Some(made) = creations.join_next().await {
            actors.push(made??);
        }
        times.push(start.elapsed());
        for acc in actors {
            acc.kill().await?;
        }
    }
    Ok(times)
}

/// **A DAG of trivial tasks.** `roots` `noop` roots, each feeding `fanout`
/// `noop`s that take its result as argument, default strategy; all submitted
/// without waiting, then `get_many` of all. The times of `runs` runs (first
/// submit to last result) after a warm-up run.
pub async fn dag_times(
    cluster: &Cluster,
    demo: &Module,
    roots: usize,
    fanout: usize,
    runs: usize,
) -> Result<Vec<Duration>> {
    let run = || async {
        let start = Instant::now();
        let mut refs = Vec::with_capacity(roots * (1 + fanout));
        for _ in 0..roots {
            let root = cluster.task(demo, "noop").submit()?;
            for _ in 0..fanout {
                refs.push(cluster.task(demo, "noop").arg(&root).submit()?);
            }
            refs.push(root);
        }
        let done: Vec<()> = tokio::time::timeout(RUN_TIMEOUT, cluster.get_many(&refs))
            .await
            .context("a DAG run did not finish in time")??;
        let elapsed = start.elapsed();
        ensure!(done.len() == refs.len());
        anyhow::Ok(elapsed)
    };
    run().await?;
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        times.push(run().await?);
    }
    Ok(times)
}
