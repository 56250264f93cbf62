//! Test harness: an in-process control plane on 127.0.0.1:0 with token
//! checking, and fake nodes — tiny `Peer` servers that keep their own
//! bundle accounting — for the control plane to reserve bundles on.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reef_gcs::tables::Resources;
pub use reef_gcs::ControlPlane;
use reef_gcs::{ControlPlaneService, FileStore, GcsClient, ServiceConfig};
use reef_proto::auth::CheckToken;
use reef_proto::peer_server::{Peer, PeerServer};
use reef_proto::*;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::{Request, Response, Status};

pub const TOKEN: &str = "test-token-0123456789";

/// Accepted connections with Nagle off, as a real server would set them
/// (`Server::builder().tcp_nodelay(true)` does it for `serve`).
fn incoming(
    listener: TcpListener,
) -> impl tokio_stream::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    use tokio_stream::StreamExt;
    TcpListenerStream::new(listener).map(|s| {
        let s = s?;
        s.set_nodelay(true)?;
        Ok(s)
    })
}

pub fn cpus(n: f64) -> Resources {
    Resources::from([("CPU".to_owned(), n)])
}

pub fn rmap(n: f64) -> Option<ResourceMap> {
    Some(cpus(n).to_map())
}

/// A running control plane.
pub struct Head {
    pub address: String,
    pub service: ControlPlaneService,
    pub client: GcsClient,
    _dir: tempfile::TempDir,
}

/// Starts a control plane over a fresh file store.
pub async fn start_head(config: ServiceConfig) -> Head {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(FileStore::open(dir.path()).unwrap());
    let service = ControlPlaneService::new(store, TOKEN, config).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let grpc = service.clone().into_server(TOKEN);
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(grpc)
            .serve_with_incoming(incoming(listener))
            .await
            .unwrap();
    });
    let client = GcsClient::connect_lazy(&address, TOKEN).unwrap();
    Head {
        address,
        service,
        client,
        _dir: dir,
    }
}

/// A fake node's bundle bookkeeping.
#[derive(Default)]
pub struct FakeNodeState {
    pub total: Resources,
    pub reserved: HashMap<u64, Vec<(u32, Resources)>>,
}

impl FakeNodeState {
    pub fn free(&self) -> Resources {
        let mut free = self.total.clone();
        for bundles in self.reserved.values() {
            for (_, r) in bundles {
                free.subtract(r);
            }
        }
        free
    }
}

/// The `Peer` side of a node, as far as the control plane uses it.
#[derive(Clone)]
pub struct FakeNode {
    pub id: String,
    pub address: String,
    pub state: Arc<Mutex<FakeNodeState>>,
    /// Answer `reserved = false` to every reservation.
    pub refuse: Arc<AtomicBool>,
    pub reserve_calls: Arc<AtomicUsize>,
    pub release_calls: Arc<AtomicUsize>,
}

impl FakeNode {
    /// Starts a fake node's Peer server (token-checked) with `cpu` CPUs.
    pub async fn start(id: &str, cpu: f64) -> FakeNode {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let node = FakeNode {
            id: id.to_owned(),
            address: listener.local_addr().unwrap().to_string(),
            state: Arc::new(Mutex::new(FakeNodeState {
                total: cpus(cpu),
                reserved: HashMap::new(),
            })),
            refuse: Arc::default(),
            reserve_calls: Arc::default(),
            release_calls: Arc::default(),
        };
        let svc = PeerServer::with_interceptor(node.clone(), CheckToken::new(TOKEN));
        tokio::spawn(async move {
            tonic::transport::Server::builder()
                .add_service(svc)
                .serve_with_incoming(incoming(listener))
                .await
                .unwrap();
        });
        node
    }

    pub fn register_request(&self) -> RegisterNodeRequest {
        let total = self.state.lock().unwrap().total.clone();
        RegisterNodeRequest {
            node_id: self.id.clone(),
            address: self.address.clone(),
            total: Some(total.to_map()),
            available: Some(total.to_map()),
            ..Default::default()
        }
    }

    /// Bundle indexes of `group` reserved here.
    pub fn bundles_of(&self, group: u64) -> Vec<u32> {
        let st = self.state.lock().unwrap();
        let mut v: Vec<u32> = st
            .reserved
            .get(&group)
            .map(|b| b.iter().map(|(i, _)| *i).collect())
            .unwrap_or_default();
        v.sort();
        v
    }

    pub fn reserved_groups(&self) -> usize {
        self.state.lock().unwrap().reserved.len()
    }

    pub fn heartbeat(&self) -> HeartbeatRequest {
        let free = self.state.lock().unwrap().free();
        HeartbeatRequest {
            node_id: self.id.clone(),
            available: Some(free.to_map()),
            ..Default::default()
        }
    }
}

fn unused<T>() -> Result<Response<T>, Status> {
    Err(Status::unimplemented("fake node"))
}

#[tonic::async_trait]
impl Peer for FakeNode {
    async fn forward(&self, _: Request<ForwardBatch>) -> Result<Response<Empty>, Status> {
        unused()
    }
    async fn objects_ready(
        &self,
        _: Request<ObjectsReadyBatch>,
    ) -> Result<Response<Empty>, Status> {
        unused()
    }
    async fn locate(&self, _: Request<LocateRequest>) -> Result<Response<LocateReply>, Status> {
        unused()
    }
    async fn add_location(
        &self,
        _: Request<AddLocationRequest>,
    ) -> Result<Response<Empty>, Status> {
        unused()
    }
    async fn free(&self, _: Request<FreeRequest>) -> Result<Response<Empty>, Status> {
        unused()
    }

    async fn reserve_bundles(
        &self,
        request: Request<ReserveBundlesRequest>,
    ) -> Result<Response<ReserveBundlesReply>, Status> {
        self.reserve_calls.fetch_add(1, Ordering::Relaxed);
        if self.refuse.load(Ordering::Relaxed) {
            return Ok(Response::new(ReserveBundlesReply {
                reserved: false,
                error: format!("{} refuses (test)", self.id),
            }));
        }
        let mut st = self.state.lock().unwrap();
        let bundles: Vec<(u64, u32, Resources)> = request
            .into_inner()
            .bundles
            .into_iter()
            .map(|b| {
                (
                    b.placement_group_id,
                    b.bundle_index,
                    Resources::from_map(&b.resources.clone().unwrap_or_default()),
                )
            })
            .collect();
        let need = Resources::sum(bundles.iter().map(|b| &b.2));
        if !need.fits_in(&st.free()) {
            return Ok(Response::new(ReserveBundlesReply {
                reserved: false,
                error: format!("{}: {need:?} does not fit", self.id),
            }));
        }
        for (group, index, r) in bundles {
            st.reserved.entry(group).or_default().push((index, r));
        }
        Ok(Response::new(ReserveBundlesReply {
            reserved: true,
            error: String::new(),
        }))
    }

    async fn release_bundles(
        &self,
        request: Request<ReleaseBundlesRequest>,
    ) -> Result<Response<Empty>, Status> {
        self.release_calls.fetch_add(1, Ordering::Relaxed);
        let group = request.into_inner().placement_group_id;
        self.state.lock().unwrap().reserved.remove(&group);
        Ok(Response::new(Empty {}))
    }

    async fn kill_actor(&self, _: Request<KillActorRequest>) -> Result<Response<Empty>, Status> {
        Ok(Response::new(Empty {}))
    }

    async fn actor_ended(&self, _: Request<ActorEndedRequest>) -> Result<Response<Empty>, Status> {
        unused()
    }

    async fn object_access(
        &self,
        _: Request<ObjectAccessRequest>,
    ) -> Result<Response<ObjectAccessReply>, Status> {
        unused()
    }
}

/// Starts `n` fake nodes (`n0`, `n1`, ...) of `cpu` CPUs each and registers
/// them with the head.
pub async fn fake_cluster(head: &Head, n: usize, cpu: f64) -> Vec<FakeNode> {
    let mut nodes = Vec::new();
    for i in 0..n {
        let node = FakeNode::start(&format!("n{i}"), cpu).await;
        head.client.register(node.register_request()).await.unwrap();
        nodes.push(node);
    }
    nodes
}

/// Polls `f` until it returns `Some`, failing after `timeout`.
pub async fn eventually<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "condition not met within {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Node id → state in a view.
pub fn node_states(view: &ClusterView) -> BTreeMap<String, NodeState> {
    view.nodes
        .iter()
        .map(|n| (n.node_id.clone(), NodeState::try_from(n.state).unwrap()))
        .collect()
}
