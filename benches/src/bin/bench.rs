//! `make bench`: prints one line per figure, `<figure>: <value> <unit> (target ...)`.
//!
//! `bench [GROUP...]` runs only some groups: roundtrip, throughput, metrics,
//! put, remote, instance, views, memory, seed, cluster, langs, isolation (`metrics`: the
//! task throughput with and without metrics, and the overhead); `head-restart` runs only
//! the cluster group's head restart row; `transfer` runs only the cluster
//! group's 1 GiB transfer rows, `scheduling` only its task, placement-group
//! and actor rows, `restarts` only its actor restart rows, `recovery` only its task recovery and
//! lineage cost rows; `isolation` the tenant-isolation group (tenant A's
//! round trips idle and under tenant B's flood, shares by weight). Diagnostics go to stderr (`REEF_LOG=info` for
//! percentiles and run times).

use anyhow::Result;
use reef::Cluster;
use reef_benches::harness::{self, GIB, MIB};
use reef_benches::{
    cluster, head_restart, instance, isolation, langs, memory, metrics, put, recovery, remote,
    restarts, roundtrip, seed, throughput, views,
};

const GROUPS: [&str; 17] = [
    "roundtrip",
    "throughput",
    "metrics",
    "put",
    "remote",
    "instance",
    "views",
    "memory",
    "seed",
    "cluster",
    "transfer",
    "scheduling",
    "restarts",
    "recovery",
    "langs",
    "head-restart",
    "isolation",
];

// The runtime a latency-minded driver uses (`reef::runtime`): one thread
// that spins briefly before it sleeps.
fn main() -> Result<()> {
    reef::runtime().block_on(run())
}

async fn run() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("REEF_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(bad) = args.iter().find(|a| !GROUPS.contains(&a.as_str())) {
        anyhow::bail!("unknown group `{bad}` (groups: {})", GROUPS.join(", "));
    }
    let wants = |g: &str| args.is_empty() || args.iter().any(|a| a == g);
    harness::warn_if_busy();

    if wants("roundtrip") || wants("throughput") || wants("put") {
        // One node for the driver figures, its arena large enough for a 1 GiB put.
        let cluster = Cluster::local_with(&["--object-store-memory", "1536MiB"]).await?;
        harness::wait_steady(&harness::arena_of(cluster.address())?).await?;
        let demo = cluster.register_file(harness::guest("demo")).await?;
        if wants("roundtrip") {
            roundtrip::sync_task(&cluster, &demo).await?;
        }
        if wants("throughput") {
            throughput::tasks(&cluster, &demo).await?;
            throughput::actor_calls(&cluster, &demo).await?;
        }
        if wants("put") {
            let data = harness::touched_buffer(GIB as usize);
            put::same_machine(&cluster, &data).await?;
            drop(cluster);
            put::over_socket(&data).await?;
        }
    }

    if wants("metrics") {
        metrics::overhead().await?;
    }

    if wants("remote") {
        let data = harness::touched_buffer(GIB as usize);
        remote::figures(&data).await?;
    }

    if wants("instance") || wants("views") {
        let (node, dir) = harness::in_process_node(GIB + 256 * MIB).await?;
        let demo = node
            .registry
            .register(node.host(), harness::read_guest("demo")?)
            .await?;
        if wants("instance") {
            instance::fresh_instance(&node, &demo).await?;
        }
        if wants("views") {
            views::guest_views(&node, &demo).await?;
        }
        node.stop();
        drop(node); // frees its arena
        drop(dir);
    }

    if wants("memory") {
        memory::concurrent_readers().await?;
    }

    if wants("seed") {
        seed::figures().await?;
    }

    if wants("cluster") || wants("transfer") {
        cluster::transfer().await?;
    }
    if wants("cluster") {
        cluster::broadcast().await?;
    }
    if wants("cluster") || wants("scheduling") {
        cluster::dag_and_placements().await?;
    }
    if wants("cluster") || wants("head-restart") {
        head_restart::figure().await?;
    }

    if wants("cluster") || wants("restarts") {
        restarts::actor_restart().await?;
    }
    if wants("cluster") || wants("recovery") {
        recovery::figures().await?;
    }

    if wants("isolation") {
        isolation::figures().await?;
    }

    if wants("langs") {
        langs::all().await?;
    }
    Ok(())
}
