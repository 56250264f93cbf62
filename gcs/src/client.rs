//! [`GcsClient`]: the [`ControlPlane`] over gRPC, for every node but the head
//! (and for tools and benchmarks).
//!
//! A thin, cloneable wrapper over the generated `ControlPlaneClient`: the
//! channel connects lazily (and reconnects) and every call carries the
//! cluster token. Errors are tonic [`Status`]es carrying the Reef error in
//! their details: `reef_core::ReefError::from(status)` gets it back.

use std::time::Duration;

use bytes::Bytes;
use reef_core::ReefError;
use reef_proto::auth::{AttachToken, TokenChannel};
use reef_proto::control_plane_client::ControlPlaneClient;
use reef_proto::*;
use tonic::Status;

use crate::control_plane::{ControlPlane, ViewStream};
use crate::service::MAX_MESSAGE_BYTES;

/// A token-carrying gRPC client of the head's `ControlPlane` service.
#[derive(Clone)]
pub struct GcsClient {
    inner: ControlPlaneClient<TokenChannel>,
    address: String,
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
        })
    }

    /// The address this client talks to.
    pub fn address(&self) -> &str {
        &self.address
    }

    fn rpc(&self) -> ControlPlaneClient<TokenChannel> {
        self.inner.clone()
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
        self.rpc().drain_node(req).await?;
        Ok(())
    }

    async fn put_module(&self, hash: &str, wasm: Bytes) -> Result<(), Status> {
        let req = PutModuleRequest {
            hash: hash.to_owned(),
            wasm,
        };
        self.rpc().put_module(req).await?;
        Ok(())
    }

    async fn get_module(&self, hash: &str) -> Result<Bytes, Status> {
        let req = GetModuleRequest {
            hash: hash.to_owned(),
        };
        Ok(self.rpc().get_module(req).await?.into_inner().wasm)
    }

    async fn place_actor(&self, req: PlaceActorRequest) -> Result<ActorLocation, Status> {
        let reply = self.rpc().place_actor(req).await?.into_inner();
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
        self.rpc().set_actor_state(req).await?;
        Ok(())
    }

    async fn lookup_actor(&self, key: lookup_actor_request::Key) -> Result<ActorLocation, Status> {
        let req = LookupActorRequest { key: Some(key) };
        Ok(self.rpc().lookup_actor(req).await?.into_inner())
    }

    async fn start_job(&self, req: StartJobRequest) -> Result<u64, Status> {
        Ok(self.rpc().start_job(req).await?.into_inner().job_id)
    }

    async fn end_job(&self, job_id: u64, ended_at_ms: u64) -> Result<(), Status> {
        let req = EndJobRequest {
            job_id,
            ended_at_ms,
        };
        self.rpc().end_job(req).await?;
        Ok(())
    }

    async fn list_jobs(&self) -> Result<Vec<JobInfo>, Status> {
        Ok(self
            .rpc()
            .list_jobs(ListJobsRequest {})
            .await?
            .into_inner()
            .jobs)
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
        Ok(self.rpc().kv_put(req).await?.into_inner().written)
    }

    async fn kv_get(&self, ns: &str, key: &str) -> Result<Option<Bytes>, Status> {
        let req = KvGetRequest {
            ns: ns.to_owned(),
            key: key.to_owned(),
        };
        Ok(self.rpc().kv_get(req).await?.into_inner().value)
    }

    async fn kv_delete(&self, ns: &str, key: &str) -> Result<bool, Status> {
        let req = KvDeleteRequest {
            ns: ns.to_owned(),
            key: key.to_owned(),
        };
        Ok(self.rpc().kv_delete(req).await?.into_inner().deleted)
    }

    async fn kv_keys(&self, ns: &str, prefix: &str) -> Result<Vec<String>, Status> {
        let req = KvKeysRequest {
            ns: ns.to_owned(),
            prefix: prefix.to_owned(),
        };
        Ok(self.rpc().kv_keys(req).await?.into_inner().keys)
    }

    async fn pg_create(
        &self,
        req: CreatePlacementGroupRequest,
    ) -> Result<PlacementGroupInfo, Status> {
        Ok(self.rpc().create_placement_group(req).await?.into_inner())
    }

    async fn pg_get(&self, id: u64) -> Result<PlacementGroupInfo, Status> {
        let req = PlacementGroupId { id };
        Ok(self.rpc().get_placement_group(req).await?.into_inner())
    }

    async fn pg_wait(&self, id: u64, timeout: Duration) -> Result<PlacementGroupInfo, Status> {
        let req = WaitPlacementGroupRequest {
            id,
            timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
        };
        Ok(self.rpc().wait_placement_group(req).await?.into_inner())
    }

    async fn pg_remove(&self, id: u64) -> Result<(), Status> {
        let req = PlacementGroupId { id };
        self.rpc().remove_placement_group(req).await?;
        Ok(())
    }
}
