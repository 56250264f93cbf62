//! [`GcsClient`]: the [`ControlPlane`] over gRPC, for every node but the head
//! (and for tools and benchmarks).
//!
//! A thin, cloneable wrapper over the generated `ControlPlaneClient`: the
//! channel connects lazily (and reconnects) and every call carries the
//! cluster token. Errors are tonic [`Status`]es carrying the Reef error in
//! their details: `reef_core::ReefError::from(status)` gets it back.
//!
//! **A head that went away.** Every call but `register`, `heartbeat` and
//! `subscribe` (whose callers have loops of their own) is retried with
//! [`Backoff`] while the head cannot be reached ([`is_unreachable`]), for up to
//! the client's *patience* (60 s by default): a node keeps working through a
//! head restart, and what needs the head waits for it. When the patience
//! runs out the call fails with `TIMEOUT`, naming the head and the last
//! transport error.

use std::future::Future;
use std::time::{Duration, Instant};

use bytes::Bytes;
use reef_core::ReefError;
use reef_proto::auth::{AttachToken, TokenChannel};
use reef_proto::control_plane_client::ControlPlaneClient;
use reef_proto::*;
use tonic::{Code, Status};

use crate::backoff::Backoff;
use crate::control_plane::{ControlPlane, ViewStream};
use crate::service::MAX_MESSAGE_BYTES;
use crate::status::reef_status;

/// Whether a failed call never reached the head, or lost its connection
/// on the way (`Unavailable`, or `Unknown` for a transport error: a
/// connection reset mid-call, as when the head is killed).
pub fn is_unreachable(status: &Status) -> bool {
    match status.code() {
        Code::Unavailable => true,
        Code::Unknown => status.message().contains("transport error"),
        _ => false,
    }
}

/// How long a call waits for an unreachable head by default.
pub const DEFAULT_PATIENCE: Duration = Duration::from_secs(60);

/// A token-carrying gRPC client of the head's `ControlPlane` service.
#[derive(Clone)]
pub struct GcsClient {
    inner: ControlPlaneClient<TokenChannel>,
    address: String,
    patience: Duration,
}

impl std::fmt::Debug for GcsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the control plane at {}", self.address)
    }
}

impl GcsClient {
    /// A client of the control plane at `address` (`host:port` or a URI).
    /// Nothing is connected until the first call; a call made while the
    /// head is unreachable fails with `Unavailable`. Needs a tokio runtime.
    pub fn connect_lazy(address: &str, token: &str) -> Result<Self, String> {
        let attach = AttachToken::new(token)?;
        let channel = reef_core::channel::lazy(address)
            .map_err(|e| format!("bad control plane address {address}: {}", e.message))?;
        let inner = ControlPlaneClient::with_interceptor(channel, attach)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES);
        Ok(Self {
            inner,
            address: address.to_owned(),
            patience: DEFAULT_PATIENCE,
        })
    }

    /// How long calls wait for an unreachable head before failing with
    /// `TIMEOUT` (zero: fail at once).
    pub fn with_patience(mut self, patience: Duration) -> Self {
        self.patience = patience;
        self
    }

    /// The address this client talks to.
    pub fn address(&self) -> &str {
        &self.address
    }

    fn rpc(&self) -> ControlPlaneClient<TokenChannel> {
        self.inner.clone()
    }

    /// Runs `call` until it gets through to the head, for up to the patience.
    /// For calls that are safe to repeat: a call whose connection broke
    /// mid-way may already have been done.
    async fn patiently<T, F, Fut>(&self, what: &str, call: F) -> Result<T, Status>
    where
        F: Fn(ControlPlaneClient<TokenChannel>) -> Fut,
        Fut: Future<Output = Result<T, Status>>,
    {
        self.retrying(what, is_unreachable, call).await
    }

    /// Like `patiently`, for calls not safe to repeat (they create something):
    /// retried only while the head cannot be reached at all (`Unavailable`),
    /// never after a connection broke mid-call.
    async fn patiently_unsent<T, F, Fut>(&self, what: &str, call: F) -> Result<T, Status>
    where
        F: Fn(ControlPlaneClient<TokenChannel>) -> Fut,
        Fut: Future<Output = Result<T, Status>>,
    {
        self.retrying(what, |s| s.code() == Code::Unavailable, call)
            .await
    }

    async fn retrying<T, F, Fut>(
        &self,
        what: &str,
        retry: fn(&Status) -> bool,
        call: F,
    ) -> Result<T, Status>
    where
        F: Fn(ControlPlaneClient<TokenChannel>) -> Fut,
        Fut: Future<Output = Result<T, Status>>,
    {
        let started = Instant::now();
        let mut backoff = Backoff::default();
        loop {
            match call(self.rpc()).await {
                Err(status) if retry(&status) => {
                    let waited = started.elapsed();
                    if waited >= self.patience {
                        return Err(reef_status(
                            Code::DeadlineExceeded,
                            reef_proto::ErrorCode::Timeout,
                            format!(
                                "{what}: the control plane at {} was unreachable for {} ms: {}",
                                self.address,
                                waited.as_millis(),
                                status.message()
                            ),
                        ));
                    }
                    tracing::debug!(what, address = %self.address, "control plane unreachable: waiting");
                    let delay = backoff.next_delay().min(self.patience - waited);
                    tokio::time::sleep(delay).await;
                }
                other => return other,
            }
        }
    }
}

#[async_trait::async_trait]
impl ControlPlane for GcsClient {
    async fn register(&self, req: RegisterNodeRequest) -> Result<RegisterNodeReply, Status> {
        Ok(self.rpc().register_node(req).await?.into_inner())
    }

    async fn heartbeat(&self, req: HeartbeatRequest) -> Result<bool, Status> {
        Ok(self.rpc().heartbeat(req).await?.into_inner().unknown)
    }

    async fn subscribe(&self, node_id: &str) -> Result<ViewStream, Status> {
        let req = SubscribeRequest {
            node_id: node_id.to_owned(),
        };
        let stream = self.rpc().subscribe(req).await?.into_inner();
        Ok(Box::pin(stream))
    }

    async fn drain(&self, node_id: &str, reason: &str) -> Result<(), Status> {
        let req = DrainNodeRequest {
            node_id: node_id.to_owned(),
            reason: reason.to_owned(),
        };
        self.patiently("drain_node", |mut c| {
            let req = req.clone();
            async move { c.drain_node(req).await }
        })
        .await?;
        Ok(())
    }

    async fn put_module(&self, hash: &str, wasm: Bytes) -> Result<(), Status> {
        let req = PutModuleRequest {
            hash: hash.to_owned(),
            wasm,
        };
        self.patiently("put_module", |mut c| {
            let req = req.clone();
            async move { c.put_module(req).await }
        })
        .await?;
        Ok(())
    }

    async fn get_module(&self, hash: &str) -> Result<Bytes, Status> {
        let req = GetModuleRequest {
            hash: hash.to_owned(),
        };
        Ok(self
            .patiently("get_module", |mut c| {
                let req = req.clone();
                async move { c.get_module(req).await }
            })
            .await?
            .into_inner()
            .wasm)
    }

    async fn place_actor(&self, req: PlaceActorRequest) -> Result<ActorLocation, Status> {
        let reply = self
            .patiently("place_actor", |mut c| {
                let req = req.clone();
                async move { c.place_actor(req).await }
            })
            .await?
            .into_inner();
        reply.location.ok_or_else(|| {
            ReefError::new(ErrorCode::Internal, "PlaceActor replied without a location").into()
        })
    }

    async fn set_actor_state(
        &self,
        actor_id: u64,
        state: &str,
        reason: &str,
    ) -> Result<(), Status> {
        let req = SetActorStateRequest {
            actor_id,
            state: state.to_owned(),
            reason: reason.to_owned(),
        };
        self.patiently("set_actor_state", |mut c| {
            let req = req.clone();
            async move { c.set_actor_state(req).await }
        })
        .await?;
        Ok(())
    }

    async fn lookup_actor(&self, key: lookup_actor_request::Key) -> Result<ActorLocation, Status> {
        let req = LookupActorRequest { key: Some(key) };
        Ok(self
            .patiently("lookup_actor", |mut c| {
                let req = req.clone();
                async move { c.lookup_actor(req).await }
            })
            .await?
            .into_inner())
    }

    async fn start_job(&self, req: StartJobRequest) -> Result<u64, Status> {
        Ok(self
            .patiently_unsent("start_job", |mut c| {
                let req = req.clone();
                async move { c.start_job(req).await }
            })
            .await?
            .into_inner()
            .job_id)
    }

    async fn end_job(&self, job_id: u64, ended_at_ms: u64) -> Result<(), Status> {
        let req = EndJobRequest {
            job_id,
            ended_at_ms,
        };
        self.patiently("end_job", |mut c| async move { c.end_job(req).await })
            .await?;
        Ok(())
    }

    async fn list_jobs(&self) -> Result<Vec<JobInfo>, Status> {
        let reply = self
            .patiently("list_jobs", |mut c| async move {
                c.list_jobs(ListJobsRequest {}).await
            })
            .await?;
        Ok(reply.into_inner().jobs)
    }

    async fn kv_put(
        &self,
        ns: &str,
        key: &str,
        value: Bytes,
        overwrite: bool,
    ) -> Result<bool, Status> {
        let req = KvPutRequest {
            ns: ns.to_owned(),
            key: key.to_owned(),
            value,
            overwrite,
        };
        Ok(self
            .patiently_unsent("kv_put", |mut c| {
                let req = req.clone();
                async move { c.kv_put(req).await }
            })
            .await?
            .into_inner()
            .written)
    }

    async fn kv_get(&self, ns: &str, key: &str) -> Result<Option<Bytes>, Status> {
        let req = KvGetRequest {
            ns: ns.to_owned(),
            key: key.to_owned(),
        };
        Ok(self
            .patiently("kv_get", |mut c| {
                let req = req.clone();
                async move { c.kv_get(req).await }
            })
            .await?
            .into_inner()
            .value)
    }

    async fn kv_delete(&self, ns: &str, key: &str) -> Result<bool, Status> {
        let req = KvDeleteRequest {
            ns: ns.to_owned(),
            key: key.to_owned(),
        };
        Ok(self
            .patiently("kv_delete", |mut c| {
                let req = req.clone();
                async move { c.kv_delete(req).await }
            })
            .await?
            .into_inner()
            .deleted)
    }

    async fn kv_keys(&self, ns: &str, prefix: &str) -> Result<Vec<String>, Status> {
        let req = KvKeysRequest {
            ns: ns.to_owned(),
            prefix: prefix.to_owned(),
        };
        Ok(self
            .patiently("kv_keys", |mut c| {
                let req = req.clone();
                async move { c.kv_keys(req).await }
            })
            .await?
            .into_inner()
            .keys)
    }

    async fn pg_create(
        &self,
        req: CreatePlacementGroupRequest,
    ) -> Result<PlacementGroupInfo, Status> {
        Ok(self
            .patiently_unsent("create_placement_group", |mut c| {
                let req = req.clone();
                async move { c.create_placement_group(req).await }
            })
            .await?
            .into_inner())
    }

    async fn pg_get(&self, id: u64) -> Result<PlacementGroupInfo, Status> {
        let req = PlacementGroupId { id };
        Ok(self
            .patiently("get_placement_group", |mut c| async move {
                c.get_placement_group(req).await
            })
            .await?
            .into_inner())
    }

    async fn pg_wait(&self, id: u64, timeout: Duration) -> Result<PlacementGroupInfo, Status> {
        let req = WaitPlacementGroupRequest {
            id,
            timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
        };
        Ok(self
            .patiently("wait_placement_group", |mut c| async move {
                c.wait_placement_group(req).await
            })
            .await?
            .into_inner())
    }

    async fn pg_remove(&self, id: u64) -> Result<(), Status> {
        let req = PlacementGroupId { id };
        self.patiently("remove_placement_group", |mut c| async move {
            c.remove_placement_group(req).await
        })
        .await?;
        Ok(())
    }

    async fn authenticate(&self, token_sha256: &[u8]) -> Result<Option<Principal>, Status> {
        let req = AuthenticateRequest {
            token_sha256: Bytes::copy_from_slice(token_sha256),
        };
        Ok(self
            .patiently("authenticate", |mut c| {
                let req = req.clone();
                async move { c.authenticate(req).await }
            })
            .await?
            .into_inner()
            .principal)
    }

    async fn add_tenant(
        &self,
        name: &str,
        token_sha256: &[u8],
        quotas: TenantQuotas,
    ) -> Result<TenantInfo, Status> {
        let req = AddTenantRequest {
            name: name.to_owned(),
            token_sha256: Bytes::copy_from_slice(token_sha256),
            quotas: Some(quotas),
        };
        Ok(self
            .patiently_unsent("add_tenant", |mut c| {
                let req = req.clone();
                async move { c.add_tenant(req).await }
            })
            .await?
            .into_inner())
    }

    async fn list_tenants(&self) -> Result<Vec<TenantInfo>, Status> {
        Ok(self
            .patiently("list_tenants", |mut c| async move {
                c.list_tenants(ListTenantsRequest {}).await
            })
            .await?
            .into_inner()
            .tenants)
    }

    async fn set_tenant_quotas(
        &self,
        name: &str,
        quotas: TenantQuotas,
    ) -> Result<TenantInfo, Status> {
        let req = SetTenantQuotasRequest {
            name: name.to_owned(),
            quotas: Some(quotas),
        };
        Ok(self
            .patiently_unsent("set_tenant_quotas", |mut c| {
                let req = req.clone();
                async move { c.set_tenant_quotas(req).await }
            })
            .await?
            .into_inner())
    }

    async fn remove_tenant(&self, name: &str) -> Result<TenantInfo, Status> {
        let req = RemoveTenantRequest {
            name: name.to_owned(),
        };
        Ok(self
            .patiently_unsent("remove_tenant", |mut c| {
                let req = req.clone();
                async move { c.remove_tenant(req).await }
            })
            .await?
            .into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lost_connections_count_as_unreachable() {
        assert!(is_unreachable(&Status::unavailable("connection refused")));
        assert!(is_unreachable(&Status::unknown("transport error")));
        assert!(!is_unreachable(&Status::unknown("something else")));
        assert!(!is_unreachable(&Status::not_found("no such actor")));
    }
}
