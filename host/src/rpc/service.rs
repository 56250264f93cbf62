//! The node's gRPC service (`reef.v1.Node`).

use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use futures::{Stream, StreamExt};
use reef_core::{Caller, ErrorCode, ReefError, TenantId};
use reef_proto as pb;
use reef_proto::node_server::Node as NodeApi;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status, Streaming};

use super::auth::{Authenticator, CredentialId};
use super::session::Session;
use super::state::api::StateApi;
use super::state::logs;
use super::state::scope::Viewer;
use crate::module_owners::Registrant;
use crate::node::Node;
use crate::submission::Submissions;

/// Replies packed into one outbound message at most.
const MAX_BATCH: usize = 4096;

/// A driver's ops handled before its session lets other tasks of the RPC
/// thread run (see `session`).
const OPS_PER_SLICE: usize = 64;

pub struct NodeService {
    node: Arc<Node>,
    state: Arc<StateApi>,
    jobs: Arc<Submissions>,
    /// Tells sessions when their tenant's credential is revoked.
    auth: Arc<Authenticator>,
    /// Where sessions register for the descriptor socket (`rpc::fds`).
    fds: Arc<super::fds::Registry>,
}

impl NodeService {
    pub fn new(node: Arc<Node>, auth: Arc<Authenticator>, fds: Arc<super::fds::Registry>) -> Self {
        let state = StateApi::of(&node);
        let jobs = Submissions::of(&node);
        NodeService {
            node,
            state,
            jobs,
            auth,
            fds,
        }
    }

    /// Cancelled when the credential of `request` is revoked (never for
    /// node and admin credentials, which are not revoked).
    fn revocation<T>(&self, request: &Request<T>) -> CancellationToken {
        let tenant = matches!(
            request.extensions().get::<Caller>(),
            Some(Caller::Tenant(_))
        );
        match request.extensions().get::<CredentialId>() {
            Some(id) if tenant => self.auth.revocation(*id),
            _ => CancellationToken::new(),
        }
    }
}

/// The token a request presented (`authorization: Bearer <token>`).
fn presented_token<T>(request: &Request<T>) -> String {
    request
        .metadata()
        .get(reef_proto::auth::TOKEN_KEY)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default()
        .to_string()
}

/// The metadata key a driver started by a submitted job sends its job id in.
pub const JOB_ID_KEY: &str = "reef-job-id";

/// The submitted job a driver's session belongs to ("" for none).
fn submission_of<T>(request: &Request<T>) -> String {
    request
        .metadata()
        .get(JOB_ID_KEY)
        .and_then(|v| v.to_str().ok())
        .filter(|id| crate::submission::record::valid_id(id))
        .unwrap_or_default()
        .to_string()
}

type BatchStream = Pin<Box<dyn Stream<Item = Result<pb::ServerBatch, Status>> + Send>>;

/// Where a driver connected from: `host:port` over TCP, `unix:pid <pid>`
/// over the node's Unix socket.
fn driver_address<T>(request: &Request<T>) -> String {
    if let Some(address) = request.remote_addr() {
        return address.to_string();
    }
    let unix = request
        .extensions()
        .get::<tonic::transport::server::UdsConnectInfo>();
    match unix
        .and_then(|info| info.peer_cred)
        .and_then(|cred| cred.pid())
    {
        Some(pid) => format!("unix:pid {pid}"),
        None if unix.is_some() => "unix".to_string(),
        None => "unknown".to_string(),
    }
}

#[tonic::async_trait]
impl NodeApi for NodeService {
    async fn register_module(
        &self,
        request: Request<pb::RegisterModuleRequest>,
    ) -> Result<Response<pb::RegisterModuleReply>, Status> {
        // Who may run it: the registering tenant, or everyone when the
        // admin registers it (see `module_owners`).
        let registrant = match request.extensions().get::<Caller>() {
            Some(Caller::Admin | Caller::Node) => Registrant::Public,
            Some(Caller::Tenant(tenant)) => Registrant::Tenant(tenant.clone()),
            None => Registrant::Tenant(TenantId::default()),
        };
        let request = request.into_inner();
        let registered = match crate::grants::Grants::parse(&request.grants) {
            Ok(grants) => {
                let wasm = request.wasm.to_vec();
                let registry = &self.node.registry;
                match registry
                    .register_granted(self.node.host(), wasm, grants)
                    .await
                {
                    Ok(module) => registry
                        .owners()
                        .record(&module.hash, &registrant)
                        .await
                        .map(|()| module),
                    Err(e) => Err(e),
                }
            }
            Err(e) => Err(e),
        };
        let result = match registered {
            Ok(m) => pb::register_module_reply::Result::Module(m.to_proto()),
            Err(e) => pb::register_module_reply::Result::Error(e.to_proto()),
        };
        Ok(Response::new(pb::RegisterModuleReply {
            result: Some(result),
        }))
    }

    type SessionStream = BatchStream;

    async fn session(
        &self,
        request: Request<Streaming<pb::ClientBatch>>,
    ) -> Result<Response<Self::SessionStream>, Status> {
        let driver = driver_address(&request);
        let tenant = work_tenant(&request);
        // A tenant's session uses its tenant's objects only; the admin's all.
        let restricted = matches!(
            request.extensions().get::<Caller>(),
            Some(Caller::Tenant(_))
        );
        let revoked = self.revocation(&request);
        let submission_id = submission_of(&request);
        let mut inbound = request.into_inner();
        // Sessions allocate ids from the node's index: wait until it is known.
        self.node.cluster.registered().await;
        let (tx, rx) = mpsc::unbounded_channel();
        let session = Session::new(
            self.node.clone(),
            self.fds.clone(),
            tx,
            driver,
            submission_id,
            tenant.clone(),
            restricted,
        )?;
        let awaiting = session.awaiting_replies();
        let closing = self.node.closing.clone();
        let revoked_in = revoked.clone();
        let tasks = self.node.tasks.clone();
        tokio::spawn(async move {
            loop {
                // Ops waiting behind a check are bounded: read no more meanwhile.
                tokio::select! {
                    _ = session.room() => {}
                    _ = closing.cancelled() => break,
                    _ = revoked_in.cancelled() => break,
                }
                let message = tokio::select! {
                    m = inbound.message() => m,
                    _ = closing.cancelled() => break,
                    _ = revoked_in.cancelled() => break,
                };
                match message {
                    Ok(Some(batch)) => {
                        let _reading =
                            (batch.ops.len() > OPS_PER_SLICE).then(|| tasks.reading_batch());
                        for (i, op) in batch.ops.into_iter().filter_map(|o| o.op).enumerate() {
                            // A batch of thousands of submissions must not
                            // hold the RPC thread from other sessions (other
                            // tenants' drivers): let them in between slices.
                            if i > 0 && i % OPS_PER_SLICE == 0 {
                                tokio::task::yield_now().await;
                            }
                            session.handle(op);
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        tracing::debug!("driver stream ended: {e}");
                        break;
                    }
                }
            }
            session.close();
        });
        // Everything queued when the stream is polled goes out in one message.
        // A reply is queued as its task ends, and this stream's task is woken
        // at once (tokio runs a woken task next): every reply alone would be
        // a message, a write and a wake-up of the driver. So once, the stream
        // lets the tasks ready to run go first and takes what they queued.
        //
        // Unless no other op of the driver waits for a reply (a sync round
        // trip: its get was the only one): nothing more is coming to batch
        // with, and under another tenant's flood that turn was the longest
        // part of the round trip (the RPC thread runs the flood's tasks in
        // the same line: ~100 of ~190 us at the median).
        let outbound = futures::stream::unfold((rx, awaiting), |(mut rx, awaiting)| async move {
            let first = rx.recv().await?;
            let mut replies = vec![first];
            drain(&mut rx, &mut replies);
            if replies.len() < MAX_BATCH && awaiting.load(Ordering::Relaxed) > 0 {
                tokio::task::yield_now().await;
                drain(&mut rx, &mut replies);
            }
            Some((Ok(pb::ServerBatch { replies }), (rx, awaiting)))
        });
        // The stream ends when the node closes its sessions (see `Node::drain`),
        // or with PERMISSION_DENIED when the tenant is revoked.
        let ended_by_revocation = revoked.clone();
        let outbound = outbound
            .take_until(self.node.closing.clone().cancelled_owned())
            .take_until(revoked.cancelled_owned())
            .chain(
                futures::stream::once(async move { ended_by_revocation.is_cancelled() })
                    .filter_map(move |revoked| {
                        let refusal = revoked.then(|| {
                            Err::<pb::ServerBatch, Status>(Status::from(ReefError::new(
                                ErrorCode::PermissionDenied,
                                format!("tenant {tenant} was revoked: its session ended"),
                            )))
                        });
                        futures::future::ready(refusal)
                    }),
            );
        Ok(Response::new(Box::pin(outbound)))
    }

    async fn status(
        &self,
        request: Request<pb::StatusRequest>,
    ) -> Result<Response<pb::StatusReply>, Status> {
        let viewer = Viewer::of(&request);
        Ok(Response::new(super::status::status(&self.node, &viewer)))
    }

    async fn list(
        &self,
        request: Request<pb::ListRequest>,
    ) -> Result<Response<pb::ListReply>, Status> {
        let viewer = Viewer::of(&request);
        let reply = self.state.list(&viewer, request.into_inner()).await?;
        Ok(Response::new(reply))
    }

    async fn get_state(
        &self,
        request: Request<pb::GetStateRequest>,
    ) -> Result<Response<pb::ListReply>, Status> {
        let viewer = Viewer::of(&request);
        let reply = self.state.get(&viewer, request.into_inner()).await?;
        Ok(Response::new(reply))
    }

    async fn summary(
        &self,
        request: Request<pb::SummaryRequest>,
    ) -> Result<Response<pb::SummaryReply>, Status> {
        let viewer = Viewer::of(&request);
        let reply = self.state.summary(&viewer, request.into_inner()).await?;
        Ok(Response::new(reply))
    }

    type ReadLogsStream = logs::ChunkStream;

    async fn read_logs(
        &self,
        request: Request<pb::ReadLogsRequest>,
    ) -> Result<Response<Self::ReadLogsStream>, Status> {
        let viewer = Viewer::of(&request);
        let stream = logs::read(self.state.clone(), &viewer, request.into_inner()).await?;
        Ok(Response::new(stream))
    }

    async fn submit_job(
        &self,
        request: Request<pb::SubmitJobRequest>,
    ) -> Result<Response<pb::SubmittedJob>, Status> {
        let token = presented_token(&request);
        Ok(Response::new(
            self.jobs.submit(request.into_inner(), &token).await?,
        ))
    }

    async fn list_submitted_jobs(
        &self,
        _request: Request<pb::ListSubmittedJobsRequest>,
    ) -> Result<Response<pb::ListSubmittedJobsReply>, Status> {
        let jobs = self.jobs.list().await?;
        Ok(Response::new(pb::ListSubmittedJobsReply { jobs }))
    }

    async fn get_submitted_job(
        &self,
        request: Request<pb::SubmittedJobId>,
    ) -> Result<Response<pb::SubmittedJob>, Status> {
        let id = request.into_inner().submission_id;
        Ok(Response::new(self.jobs.get(&id).await?))
    }

    async fn stop_job(
        &self,
        request: Request<pb::SubmittedJobId>,
    ) -> Result<Response<pb::SubmittedJob>, Status> {
        let id = request.into_inner().submission_id;
        Ok(Response::new(self.jobs.stop(&id).await?))
    }

    type ReadJobLogsStream = logs::ChunkStream;

    async fn read_job_logs(
        &self,
        request: Request<pb::ReadJobLogsRequest>,
    ) -> Result<Response<Self::ReadJobLogsStream>, Status> {
        Ok(Response::new(
            self.jobs.read_logs(request.into_inner()).await?,
        ))
    }

    async fn timeline(
        &self,
        request: Request<pb::TimelineRequest>,
    ) -> Result<Response<pb::TimelineReply>, Status> {
        let viewer = Viewer::of(&request);
        let limit = request.into_inner().limit as usize;
        let reply = crate::timeline::gather(&self.state, &viewer, limit).await?;
        Ok(Response::new(reply))
    }

    async fn stop(
        &self,
        _request: Request<pb::StopRequest>,
    ) -> Result<Response<pb::StopReply>, Status> {
        tracing::info!("stop requested");
        self.node.stop();
        Ok(Response::new(pb::StopReply {}))
    }
}

/// The tenant a driver's work belongs to: its credential's tenant (the
/// default tenant for admin and for servers that do not tell callers apart).
fn work_tenant<T>(request: &Request<T>) -> TenantId {
    match request.extensions().get::<Caller>() {
        Some(Caller::Tenant(tenant)) => tenant.clone(),
        _ => TenantId::default(),
    }
}

/// Moves replies already queued into `replies`, up to `MAX_BATCH`.
fn drain(rx: &mut mpsc::UnboundedReceiver<pb::ServerReply>, replies: &mut Vec<pb::ServerReply>) {
    while replies.len() < MAX_BATCH {
        match rx.try_recv() {
            Ok(r) => replies.push(r),
            Err(_) => break,
        }
    }
}
