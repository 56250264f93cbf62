//! [`InProcess`]: the [`ControlPlane`] for the node that runs the service.
//!
//! It calls the service's methods directly, as the gRPC server does for
//! remote callers, without encoding, a socket or a token check (the caller
//! is this process).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use reef_proto::{
    lookup_actor_request, ActorLocation, CreatePlacementGroupRequest, EndJobRequest,
    HeartbeatRequest, JobInfo, KvPutRequest, PlaceActorRequest, PlacementGroupInfo, Principal,
    RegisterNodeReply, RegisterNodeRequest, SetActorStateRequest, StartJobRequest, TenantInfo,
    TenantQuotas,
};
use tonic::Status;

use super::Inner;
use crate::control_plane::{ControlPlane, ViewStream};

/// A client of the control plane running in this process (see
/// [`super::ControlPlaneService::in_process`]). Keeps the service alive.
#[derive(Clone)]
pub struct InProcess {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for InProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the control plane in this process")
    }
}

impl InProcess {
    pub(crate) fn new(inner: Arc<Inner>) -> Self {
        Self { inner }
    }
}

#[async_trait::async_trait]
impl ControlPlane for InProcess {
    async fn register(&self, req: RegisterNodeRequest) -> Result<RegisterNodeReply, Status> {
        self.inner.register_node(req).await
    }

    async fn heartbeat(&self, req: HeartbeatRequest) -> Result<bool, Status> {
        Ok(self.inner.heartbeat(req)?.unknown)
    }

    async fn subscribe(&self, node_id: &str) -> Result<ViewStream, Status> {
        Ok(self.inner.subscribe(node_id))
    }

    async fn drain(&self, node_id: &str, reason: &str) -> Result<(), Status> {
        self.inner.drain_node(node_id, reason)
    }

    async fn put_module(&self, hash: &str, wasm: Bytes) -> Result<(), Status> {
        self.inner.put_module(hash, wasm).await
    }

    async fn get_module(&self, hash: &str) -> Result<Bytes, Status> {
        self.inner.get_module(hash).await
    }

    async fn place_actor(&self, req: PlaceActorRequest) -> Result<ActorLocation, Status> {
        self.inner.place_actor(req).await
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
        self.inner.with_state(|st| st.set_actor_state(&req))
    }

    async fn lookup_actor(&self, key: lookup_actor_request::Key) -> Result<ActorLocation, Status> {
        self.inner.with_state(|st| st.lookup_actor(Some(&key)))
    }

    async fn start_job(&self, req: StartJobRequest) -> Result<u64, Status> {
        self.inner.start_job(req).await
    }

    async fn end_job(&self, job_id: u64, ended_at_ms: u64) -> Result<(), Status> {
        let req = EndJobRequest {
            job_id,
            ended_at_ms,
        };
        self.inner.end_job(req).await
    }

    async fn list_jobs(&self) -> Result<Vec<JobInfo>, Status> {
        self.inner.list_jobs().await
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
        self.inner.kv_put(req).await
    }

    async fn kv_get(&self, ns: &str, key: &str) -> Result<Option<Bytes>, Status> {
        self.inner.kv_get(ns.to_owned(), key.to_owned()).await
    }

    async fn kv_delete(&self, ns: &str, key: &str) -> Result<bool, Status> {
        self.inner.kv_delete(ns.to_owned(), key.to_owned()).await
    }

    async fn kv_keys(&self, ns: &str, prefix: &str) -> Result<Vec<String>, Status> {
        self.inner.kv_keys(ns.to_owned(), prefix.to_owned()).await
    }

    async fn pg_create(
        &self,
        req: CreatePlacementGroupRequest,
    ) -> Result<PlacementGroupInfo, Status> {
        self.inner.create_group(req).await
    }

    async fn pg_get(&self, id: u64) -> Result<PlacementGroupInfo, Status> {
        self.inner.reported_group(id).await
    }

    async fn pg_wait(&self, id: u64, timeout: Duration) -> Result<PlacementGroupInfo, Status> {
        self.inner.wait_group(id, timeout).await
    }

    async fn pg_remove(&self, id: u64) -> Result<(), Status> {
        self.inner.remove_group(id).await
    }

    async fn authenticate(&self, token_sha256: &[u8]) -> Result<Option<Principal>, Status> {
        Ok(self.inner.authenticate(token_sha256))
    }

    async fn add_tenant(
        &self,
        name: &str,
        token_sha256: &[u8],
        quotas: TenantQuotas,
    ) -> Result<TenantInfo, Status> {
        self.inner
            .add_tenant(name.to_owned(), token_sha256.to_vec(), quotas)
            .await
    }

    async fn list_tenants(&self) -> Result<Vec<TenantInfo>, Status> {
        self.inner.list_tenants().await
    }

    async fn set_tenant_quotas(
        &self,
        name: &str,
        quotas: TenantQuotas,
    ) -> Result<TenantInfo, Status> {
        self.inner.set_tenant_quotas(name.to_owned(), quotas).await
    }

    async fn remove_tenant(&self, name: &str) -> Result<TenantInfo, Status> {
        self.inner.remove_tenant(name.to_owned()).await
    }
}
