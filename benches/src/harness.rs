//! What every figure needs: the guest module, nodes to run it (a child `host`
//! process or a node inside the bench process) and a wait for a node's arena
//! to be allocated and rebuilt in 2 MiB pages, so that this background work does
//! not disturb timings.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use reef::Cluster;
use reef_host::node::{Node, NodeConfig};
use reef_testkit::{Launch, RunningHost};

pub const KIB: u64 = 1 << 10;
pub const MIB: u64 = 1 << 20;
pub const GIB: u64 = 1 << 30;

/// A guest module: `$REEF_GUESTS/<name>.wasm`, else this workspace's `target/guests`.
pub use reef_testkit::guest_path as guest;

pub fn read_guest(name: &str) -> Result<Vec<u8>> {
    let path = guest(name);
    std::fs::read(&path)
        .with_context(|| format!("reading {} (run scripts/build-guests.sh)", path.display()))
}

/// A `host start` child process whose pid we know (`Cluster::local` hides it).
/// Stopped when dropped.
pub struct ChildNode(RunningHost);

impl std::ops::Deref for ChildNode {
    type Target = RunningHost;
    fn deref(&self) -> &RunningHost {
        &self.0
    }
}

impl ChildNode {
    /// A head node (with the control plane) in a fresh data directory.
    pub fn start(extra: &[&str]) -> Result<ChildNode> {
        Self::launch(Launch::head().temp_prefix("reef-bench-"), extra)
    }

    /// A head node whose data directory `dir` outlives it (restart on the same
    /// data dir: its module cache is kept).
    pub fn start_in(dir: &Path, extra: &[&str]) -> Result<ChildNode> {
        Self::launch(Launch::head().data_dir(dir), extra)
    }

    /// A worker node (fresh data directory) joining the cluster of `head`.
    pub fn start_worker(head: &ChildNode, extra: &[&str]) -> Result<ChildNode> {
        Self::launch(Launch::worker(head).temp_prefix("reef-bench-"), extra)
    }

    fn launch(launch: Launch, extra: &[&str]) -> Result<ChildNode> {
        Ok(ChildNode(launch.args(extra.iter().copied()).start()?))
    }

    /// SIGKILLs the node (no goodbye to the cluster).
    pub fn kill(&mut self) -> Result<()> {
        Ok(self.0.kill()?)
    }

    /// The cluster token.
    pub fn token(&self) -> Result<String> {
        Ok(self.0.token()?)
    }

    pub async fn connect(&self) -> Result<Cluster> {
        Ok(Cluster::connect_with_token(&self.address, &self.token()?).await?)
    }

    /// This node's id, as it reports itself.
    pub async fn node_id(&self) -> Result<String> {
        Ok(self.this_node().await?.node_id)
    }

    /// This node's own entry of its status (e.g. `bytes_pulled`).
    pub async fn this_node(&self) -> Result<reef_proto::NodeStatus> {
        let status = self.connect().await?.status().await?;
        status
            .nodes
            .into_iter()
            .find(|n| n.this_node)
            .context("the node's status has no entry for itself")
    }
}

/// A node inside the bench process (no gRPC server), for figures that time
/// the host's own code paths. The data dir is removed when the guard drops.
pub async fn in_process_node(object_store: u64) -> Result<(Arc<Node>, tempfile::TempDir)> {
    let dir = tempfile::Builder::new().prefix("reef-bench-").tempdir()?;
    let node = Node::start(NodeConfig::for_tests(dir.path(), object_store)).await?;
    // The arena is a memfd: seen through this process's descriptor of it.
    let arena = std::path::PathBuf::from(format!("/proc/self/fd/{}", node.store().arena().fd()));
    wait_steady(&arena).await?;
    Ok((node, dir))
}

pub use reef_testkit::arena::of_node as arena_of;

/// Waits until a node's arena is in its steady state: allocated, mapped and
/// rebuilt in 2 MiB pages. The rebuild takes seconds of one core after a
/// node starts; a figure measured meanwhile shares the machine with it.
pub async fn wait_steady(arena: &Path) -> Result<()> {
    reef_testkit::arena::wait_huge_pages_of(arena).await
}

/// A `len`-byte buffer with every page written (so no timing pays page faults).
pub fn touched_buffer(len: usize) -> Vec<u8> {
    // A non-zero fill is a memset of every page (zero would be a lazy calloc).
    vec![0xa5; len]
}

/// Warns when other processes keep the CPUs busy: on a 2-core machine every
/// figure here is sensitive to them.
pub fn warn_if_busy() {
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next()?.parse::<f64>().ok());
    if let Some(load) = load.filter(|l| *l > 0.5) {
        tracing::warn!("load average {load} before the bench: figures will be noisy");
    }
}
