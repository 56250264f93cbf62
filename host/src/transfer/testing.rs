//! What the transfer tests and the transfer benchmark need: in-process nodes,
//! a server of raw pull connections ([`PullServer`]), a TCP proxy that can
//! cut or freeze connections (a holder dying mid-stream), and [`bench_pull`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

use super::serve::split_listener;
use super::Puller;
use crate::node::{Node, NodeConfig};
use crate::store::ObjectId;

const MIB: u64 = 1 << 20;

/// A node inside this process, without RPC servers; its data directory goes
/// with the guard. The arena is allocated before this returns (so its
/// background prefault does not disturb measurements).
pub async fn in_process_node(object_store: u64, token: &str) -> Result<(Arc<Node>, TempDir)> {
    let dir = TempDir::new()?;
    let config = NodeConfig {
        num_cpus: 1.0,
        memory: 1 << 30,
        token: token.to_string(),
        ..NodeConfig::for_tests(dir.path(), object_store)
    };
    let node = Node::start(config).await?;
    wait_allocated(&node).await?;
    Ok((node, dir))
}

/// A directory removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new() -> Result<TempDir> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .subsec_nanos();
        let path = std::env::temp_dir().join(format!(
            "reef-transfer-{}-{nanos:08x}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(TempDir(path))
    }
    pub fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn wait_allocated(node: &Node) -> Result<()> {
    let start = Instant::now();
    loop {
        if node.store().arena().is_prefaulted() {
            return Ok(());
        }
        if start.elapsed() > Duration::from_secs(60) {
            bail!("the arena was not allocated within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Puts `bytes` into the node's store as a sealed object with one reference.
pub fn put(node: &Node, id: ObjectId, bytes: &[u8]) -> Result<()> {
    let data = node.store().new_data(bytes)?;
    node.store().insert_ready(id, data, 1)?;
    Ok(())
}

/// A deterministic pattern, different at every offset of an object.
pub fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut v = Vec::with_capacity(len + 8);
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(len);
    v
}

/// A server on 127.0.0.1 serving raw pull connections of `node`, checking
/// the node's token: the node's own port, minus its gRPC services (other
/// connections are closed). Stops on drop.
pub struct PullServer {
    pub address: String,
    task: tokio::task::JoinHandle<()>,
    /// The node whose store is served, kept alive while the server runs.
    _node: Arc<Node>,
}

impl PullServer {
    pub async fn start(node: Arc<Node>) -> Result<PullServer> {
        Self::start_at(node, "127.0.0.1:0").await
    }

    /// As [`PullServer::start`], on a given address (a holder restarted on
    /// its port).
    pub async fn start_at(node: Arc<Node>, address: &str) -> Result<PullServer> {
        use futures::StreamExt;
        let listener = TcpListener::bind(address)
            .await
            .with_context(|| format!("listening on {address}"))?;
        let address = listener.local_addr()?.to_string();
        let holder = super::Holder {
            store: node.store().clone(),
            uploads: node.uploads.clone(),
            token: node.config.token.clone(),
            // In process, drivers present the node's token too.
            drivers: {
                let check = reef_proto::auth::CheckToken::new(&node.config.token);
                Arc::new(move |auth: &[u8]| check.accepts(auth).then_some(reef_core::Caller::Admin))
            },
            access: Arc::new(|_, _| Box::pin(async { true })),
            stopping: node.stopping.clone(),
        };
        // Other (gRPC) connections are dropped.
        let mut others = Box::pin(split_listener(listener, holder, None));
        let task = tokio::spawn(async move { while others.next().await.is_some() {} });
        Ok(PullServer {
            address,
            task,
            _node: node,
        })
    }
}

impl Drop for PullServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A TCP proxy in front of a holder: `cut()` closes every connection (the
/// holder died), `freeze()` stops forwarding without closing (a hung holder),
/// `cut_after(n)` cuts once `n` bytes went from the holder to the puller.
pub struct Proxy {
    pub address: String,
    state: Arc<ProxyState>,
    task: tokio::task::JoinHandle<()>,
}

struct ProxyState {
    forwarded: AtomicU64,
    cut_after: AtomicU64,
    frozen: AtomicBool,
    cut: tokio::sync::Notify,
    is_cut: AtomicBool,
}

impl Proxy {
    pub async fn start(target: &str) -> Result<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?.to_string();
        let target: SocketAddr = target.parse().context("proxy target")?;
        let state = Arc::new(ProxyState {
            forwarded: AtomicU64::new(0),
            cut_after: AtomicU64::new(u64::MAX),
            frozen: AtomicBool::new(false),
            cut: tokio::sync::Notify::new(),
            is_cut: AtomicBool::new(false),
        });
        let st = state.clone();
        let task = tokio::spawn(async move {
            let mut conns = JoinSet::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        let Ok((inbound, _)) = accepted else { return };
                        if st.is_cut.load(Ordering::SeqCst) {
                            continue; // dead: drop new connections at once
                        }
                        conns.spawn(relay(inbound, target, st.clone()));
                    }
                    _ = st.cut.notified() => {
                        conns.abort_all();
                    }
                }
            }
        });
        Ok(Proxy {
            address,
            state,
            task,
        })
    }

    /// Closes every connection now and refuses new ones.
    pub fn cut(&self) {
        self.state.is_cut.store(true, Ordering::SeqCst);
        self.state.cut.notify_waiters();
    }

    /// Cuts every connection once `bytes` went from the holder to the puller.
    pub fn cut_after(&self, bytes: u64) {
        self.state.cut_after.store(bytes, Ordering::SeqCst);
    }

    /// Stops forwarding data from the holder (connections stay open).
    pub fn freeze(&self) {
        self.state.frozen.store(true, Ordering::SeqCst);
    }

    /// Bytes forwarded from the holder so far.
    pub fn forwarded(&self) -> u64 {
        self.state.forwarded.load(Ordering::SeqCst)
    }
}

/// Forwards one connection both ways until either side closes or the proxy cuts.
async fn relay(inbound: TcpStream, target: SocketAddr, st: Arc<ProxyState>) {
    let Ok(outbound) = TcpStream::connect(target).await else {
        return;
    };
    let _ = inbound.set_nodelay(true);
    let _ = outbound.set_nodelay(true);
    let (mut ri, mut wi) = inbound.into_split();
    let (mut ro, mut wo) = outbound.into_split();
    let up = async {
        let mut buf = vec![0u8; 256 << 10];
        while let Ok(n) = ri.read(&mut buf).await {
            if n == 0 || wo.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
    };
    let down = async {
        let mut buf = vec![0u8; 256 << 10];
        while let Ok(n) = ro.read(&mut buf).await {
            if n == 0 {
                break;
            }
            while st.frozen.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            let total = st.forwarded.fetch_add(n as u64, Ordering::SeqCst) + n as u64;
            let limit = st.cut_after.load(Ordering::SeqCst);
            // Up to the limit, then the connection dies.
            let n = n - total.saturating_sub(limit).min(n as u64) as usize;
            if wi.write_all(&buf[..n]).await.is_err() {
                break;
            }
            if total >= limit {
                st.is_cut.store(true, Ordering::SeqCst);
                st.cut.notify_waiters();
                break;
            }
        }
    };
    tokio::select! {
        _ = async { tokio::join!(up, down) } => {}
        _ = st.cut.notified() => {}
    }
    // Dropping both sockets closes them: the holder is gone.
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.state.frozen.store(false, Ordering::SeqCst);
        self.cut();
        self.task.abort();
    }
}

/// One round of [`bench_pull`].
#[derive(Clone, Copy, Debug)]
pub struct PullFigure {
    /// Bytes per second, wall clock.
    pub bytes_per_sec: f64,
    /// CPU seconds (user + system, the whole process: both nodes) per GiB
    /// moved: what the transfer costs, whatever else the machine runs.
    pub cpu_secs_per_gib: f64,
}

/// Pulls a `size`-byte object between two in-process nodes over loopback
/// (raw pull connections, at most `stripes` at once) `rounds` times and
/// returns each round's figure (the bytes are checked after the first round,
/// then the copy is freed for the next).
pub async fn bench_pull(size: u64, stripes: u64, rounds: usize) -> Result<Vec<PullFigure>> {
    let token = reef_proto::auth::generate_token()?;
    let arena = size + 64 * MIB;
    let (holder, _hd) = in_process_node(arena, &token).await?;
    let (puller_node, _pd) = in_process_node(arena, &token).await?;
    let bytes = pattern(size as usize, 7);
    put(&holder, 1, &bytes)?;
    drop(bytes);
    let server = PullServer::start(holder.clone()).await?;
    let puller = Puller::new(puller_node.store(), &token)?.with_max_stripes(stripes);
    let mut figures = Vec::with_capacity(rounds);
    for round in 0..rounds {
        let cpu = cpu_time();
        let start = Instant::now();
        puller.pull(1, size, vec![server.address.clone()]).await?;
        let secs = start.elapsed().as_secs_f64();
        let cpu = cpu_time() - cpu;
        figures.push(PullFigure {
            bytes_per_sec: size as f64 / secs,
            cpu_secs_per_gib: cpu / (size as f64 / (1u64 << 30) as f64),
        });
        if round == 0 {
            let data = puller_node.store().get(1).await?;
            if data.as_slice() != pattern(size as usize, 7).as_slice() {
                bail!("the pulled bytes differ from the original");
            }
        }
        puller_node.store().release(1);
    }
    Ok(figures)
}

/// CPU seconds this process has used (user + system).
fn cpu_time() -> f64 {
    // SAFETY: getrusage writes into the zeroed struct we own.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: RUSAGE_SELF with a valid out-pointer.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}
