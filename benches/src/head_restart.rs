//! **Head restart → cluster usable again.** A head (file store) and two
//! workers; a named `Accumulator` lives on worker B. The head is SIGKILLed,
//! and 500 ms later (the workers have noticed: their heartbeats fail) a new
//! head process starts on the same data directory and port. The figure is
//! the time from that process's start to the first answer of work that
//! needs the control plane: a driver on worker A looks the actor up by name
//! (A does not host it, so it asks the head) and calls it. The lookup is
//! sent as the head starts, so the figure includes the workers' reconnect
//! backoff. Median of 3 restarts.

use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use reef::Strategy;
use reef_testkit::{Launch, RunningHost};

use crate::harness;
use crate::report::{Bound, Figure, Unit};

const RESTARTS: usize = 3;

fn start_head(
    dir: &std::path::Path,
    port: u16,
    token: Option<&std::path::Path>,
) -> Result<RunningHost> {
    let mut launch = Launch::new(true)
        .data_dir(dir)
        .port(port)
        .args(["--heartbeat-ms", "200", "--node-timeout-ms", "10000"])
        .args(["--object-store-memory", "128MiB", "--num-cpus", "1"]);
    if let Some(token) = token {
        launch = launch.arg("--token-file").arg(token);
    }
    Ok(launch.start()?)
}

pub async fn figure() -> Result<()> {
    let dir = tempfile::Builder::new().prefix("reef-bench-").tempdir()?;
    let port = reef_testkit::try_free_port()?;
    let mut head = start_head(dir.path(), port, None)?;
    let token_file = head.node_token_file();
    let worker = |head: &RunningHost| {
        Launch::worker(head)
            .temp_prefix("reef-bench-")
            .args(["--object-store-memory", "128MiB", "--num-cpus", "2"])
            .start()
    };
    let (a, b) = (worker(&head)?, worker(&head)?);
    let token = head.token()?;
    let on_a = reef::Cluster::connect_with_token(&a.address, &token).await?;
    let on_b = reef::Cluster::connect_with_token(&b.address, &token).await?;
    let b_id = on_b
        .status()
        .await?
        .nodes
        .into_iter()
        .find(|n| n.this_node)
        .context("worker B's own status")?
        .node_id;
    let demo = on_a.register_file(harness::guest("demo")).await?;
    let _acc = on_a
        .actor(&demo, "Accumulator")
        .arg(7.0)
        .name("bench-head-restart")
        .strategy(Strategy::NodeAffinity {
            node_id: b_id,
            soft: false,
        })
        .create()
        .await
        .with_context(|| format!("creating the actor; worker B logged:\n{}", b.log()))?;

    let mut times = Vec::with_capacity(RESTARTS);
    for _ in 0..RESTARTS {
        head.kill()?;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let started = Instant::now();
        let (dir_path, token_path) = (dir.path().to_owned(), token_file.clone());
        let restart =
            tokio::task::spawn_blocking(move || start_head(&dir_path, port, Some(&token_path)));
        let found = match on_a.get_actor("bench-head-restart").await {
            Ok(found) => found,
            Err(e) => {
                let head = restart.await??;
                anyhow::bail!(
                    "{e}\nthe head logged:\n{}\nworker B logged:\n{}",
                    head.log(),
                    b.log()
                );
            }
        };
        let total = found.call("total").submit()?;
        ensure!(
            on_a.get::<f64>(&total).await? == 7.0,
            "the actor lost its state"
        );
        times.push(started.elapsed());
        head = restart.await??;
        // The next round starts from a settled cluster.
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    times.sort();
    let median = times[RESTARTS / 2];
    tracing::info!(?times, "head restarts");
    Figure::new(
        "head restart → cluster usable again (SIGKILL, same data dir; new head process start to a named-actor lookup through a worker answered)",
        median.as_secs_f64() * 1e3,
        Unit::Millis,
        Bound::AtMost(1_000.0),
    )
    .print();
    drop((a, b, head));
    Ok(())
}
