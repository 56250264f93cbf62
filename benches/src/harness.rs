//! What every figure needs: the guest module, nodes to run it (a child `host`
//! process or a node inside the bench process) and a wait for a node's arena
//! to be allocated, so that the background prefault does not disturb timings.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use reef::Cluster;
use reef_host::node::{Node, NodeConfig};

pub const KIB: u64 = 1 << 10;
pub const MIB: u64 = 1 << 20;
pub const GIB: u64 = 1 << 30;

/// A guest module: `$REEF_GUESTS/<name>.wasm`, else this workspace's `target/guests`.
pub fn guest(name: &str) -> PathBuf {
    let dir = std::env::var_os("REEF_GUESTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target/guests")));
    dir.join(format!("{name}.wasm"))
}

pub fn read_guest(name: &str) -> Result<Vec<u8>> {
    let path = guest(name);
    std::fs::read(&path)
        .with_context(|| format!("reading {} (run scripts/build-guests.sh)", path.display()))
}

/// A `host start` child process whose pid we know (`Cluster::local` hides it).
/// Stopped when dropped.
pub struct ChildNode {
    child: Child,
    pub address: String,
    /// Its data directory (module cache, token, log).
    pub dir: PathBuf,
    /// The cluster token file (the head's, for a worker).
    token_file: PathBuf,
    /// Removed on drop unless the caller owns the data directory.
    _dir: Option<tempfile::TempDir>,
}

impl ChildNode {
    /// A head node (with the control plane) in a fresh data directory.
    pub fn start(extra: &[&str]) -> Result<ChildNode> {
        let dir = tempfile::Builder::new().prefix("reef-bench-").tempdir()?;
        let mut node = Self::spawn(dir.path(), true, extra)?;
        node._dir = Some(dir);
        Ok(node)
    }

    /// A head node whose data directory `dir` outlives it (restart on the same
    /// data dir: its module cache is kept).
    pub fn start_in(dir: &Path, extra: &[&str]) -> Result<ChildNode> {
        Self::spawn(dir, true, extra)
    }

    /// A worker node (fresh data directory) joining the cluster of `head`.
    pub fn start_worker(head: &ChildNode, extra: &[&str]) -> Result<ChildNode> {
        let dir = tempfile::Builder::new().prefix("reef-bench-").tempdir()?;
        let token = head.token_file.to_str().context("token path")?.to_owned();
        let mut args = vec!["--address", head.address.as_str(), "--token-file", &token];
        args.extend_from_slice(extra);
        let mut node = Self::spawn(dir.path(), false, &args)?;
        node.token_file = head.token_file.clone();
        node._dir = Some(dir);
        Ok(node)
    }

    fn spawn(dir: &Path, head: bool, extra: &[&str]) -> Result<ChildNode> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let log = std::fs::File::create(dir.join("node.log"))?;
        let binary = reef::host_binary();
        let mut command = Command::new(&binary);
        let mut child = command
            .arg("start")
            .args(head.then_some("--head"))
            // Stops when our end of its stdin closes: on drop, or if the bench dies.
            .arg("--stop-on-stdin-close")
            .arg("--port")
            .arg(port.to_string())
            .arg("--data-dir")
            .arg(dir)
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {} (set REEF_HOST)", binary.display()))?;
        let mut banner = String::new();
        BufReader::new(child.stdout.take().expect("piped")).read_line(&mut banner)?;
        if !banner.contains("listening on") {
            let _ = child.kill();
            let _ = child.wait();
            let log = std::fs::read_to_string(dir.join("node.log")).unwrap_or_default();
            bail!("the node did not start:\n{log}");
        }
        Ok(ChildNode {
            child,
            address: format!("127.0.0.1:{port}"),
            dir: dir.to_owned(),
            token_file: dir.join("token"),
            _dir: None,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The cluster token.
    pub fn token(&self) -> Result<String> {
        reef_proto::auth::read_token_file(&self.token_file).map_err(anyhow::Error::msg)
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

impl Drop for ChildNode {
    fn drop(&mut self) {
        // Closing its stdin stops the node cleanly (it removes its arena file).
        drop(self.child.stdin.take());
        for _ in 0..300 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A node inside the bench process (no gRPC server), for figures that time
/// the host's own code paths. The data dir is removed when the guard drops.
pub async fn in_process_node(object_store: u64) -> Result<(Arc<Node>, tempfile::TempDir)> {
    let dir = tempfile::Builder::new().prefix("reef-bench-").tempdir()?;
    let config = NodeConfig {
        head: false,
        port: 0,
        num_cpus: 16.0,
        memory: 16 * GIB,
        custom_resources: Default::default(),
        object_store_memory: object_store,
        arena_dir: PathBuf::from("/dev/shm"),
        spill_dir: dir.path().join("spill"),
        data_dir: dir.path().to_owned(),
        socket_path: dir.path().join("node.sock"),
        inline_threshold: 100 * KIB,
        default_memory_limit: 256 * MIB,
        default_cpu_time_ms: 60_000,
        token: String::new(),
        head_address: None,
        advertise_host: "127.0.0.1".into(),
    };
    let node = Node::start(config).await?;
    wait_allocated(node.store().arena().path()).await?;
    Ok((node, dir))
}

/// Waits until a node's background prefault has allocated its whole arena
/// file (allocating tmpfs pages would otherwise compete with the figures for
/// the machine's two cores).
pub async fn wait_allocated(arena: &Path) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let start = Instant::now();
    loop {
        let meta = std::fs::metadata(arena)
            .with_context(|| format!("reading the arena {}", arena.display()))?;
        if meta.blocks() * 512 >= meta.len() {
            tracing::info!(
                arena = %arena.display(),
                ms = start.elapsed().as_millis() as u64,
                "arena allocated"
            );
            return Ok(());
        }
        if start.elapsed() > Duration::from_secs(60) {
            bail!(
                "the arena {} was not allocated within 60 s",
                arena.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The arena file of the node listening on `address` (`/dev/shm/reef-<port>-<id>.arena`).
pub fn arena_of(address: &str) -> Result<PathBuf> {
    let port = address.rsplit(':').next().unwrap_or_default();
    let prefix = format!("reef-{port}-");
    for entry in std::fs::read_dir("/dev/shm")? {
        let path = entry?.path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if name.starts_with(&prefix) && name.ends_with(".arena") {
            return Ok(path);
        }
    }
    bail!("no arena file for the node at {address} in /dev/shm")
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
