//! [`GcsClient`]: what nodes and drivers use to talk to the control plane.
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
use tonic::{Status, Streaming};

use crate::service::MAX_MESSAGE_BYTES;

/// A token-carrying client of the head's `ControlPlane` service.
#[derive(Clone, Debug)]
pub struct GcsClient {
    inner: ControlPlaneClient<TokenChannel>,
    address: String,
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

    /// The generated client, for calls without a convenience method.
    pub fn raw(&self) -> ControlPlaneClient<TokenChannel> {
        self.inner.clone()
    }

    // ---- nodes -------------------------------------------------------

    pub async fn register(&self, req: RegisterNodeRequest) -> Result<RegisterNodeReply, Status> {
        Ok(self.inner.clone().register_node(req).await?.into_inner())
    }

    /// Returns `unknown`: when true the control plane no longer knows the
    /// node (declared dead) and it must stop or register again.
    pub async fn heartbeat(&self, req: HeartbeatRequest) -> Result<bool, Status> {
        Ok(self
            .inner
            .clone()
            .heartbeat(req)
            .await?
            .into_inner()
            .unknown)
    }

    /// The view stream: the full view first, then one per change.
    pub async fn subscribe(&self, node_id: &str) -> Result<Streaming<ClusterView>, Status> {
        let req = SubscribeRequest {
            node_id: node_id.to_owned(),
        };
        Ok(self.inner.clone().subscribe(req).await?.into_inner())
    }

    pub async fn drain(&self, node_id: &str, reason: &str) -> Result<(), Status> {
        let req = DrainNodeRequest {
            node_id: node_id.to_owned(),
            reason: reason.to_owned(),
        };
        self.inner.clone().drain_node(req).await?;
        Ok(())
    }

    // ---- modules -----------------------------------------------------

    /// Stores a module's bytes; `hash` must be the hex sha256 of `wasm`.
    pub async fn put_module(&self, hash: &str, wasm: Bytes) -> Result<(), Status> {
        let req = PutModuleRequest {
            hash: hash.to_owned(),
            wasm,
        };
        self.inner.clone().put_module(req).await?;
        Ok(())
    }

    /// A module's bytes by hash (`UNKNOWN_MODULE` when never stored).
    pub async fn get_module(&self, hash: &str) -> Result<Bytes, Status> {
        let req = GetModuleRequest {
            hash: hash.to_owned(),
        };
        Ok(self.inner.clone().get_module(req).await?.into_inner().wasm)
    }

    // ---- actors ------------------------------------------------------

    /// Picks the actor's node and claims its name (`NAME_TAKEN`,
    /// `INFEASIBLE`, ... otherwise).
    pub async fn place_actor(&self, req: PlaceActorRequest) -> Result<ActorLocation, Status> {
        let reply = self.inner.clone().place_actor(req).await?.into_inner();
        reply.location.ok_or_else(|| {
            ReefError::new(ErrorCode::Internal, "PlaceActor replied without a location").into()
        })
    }

    /// `state`: `"ALIVE"` or `"DEAD"` (with `reason`).
    pub async fn set_actor_state(
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
        self.inner.clone().set_actor_state(req).await?;
        Ok(())
    }

    /// The live actor named `name` (`UNKNOWN_ACTOR` if none).
    pub async fn lookup_actor_name(&self, name: &str) -> Result<ActorLocation, Status> {
        self.lookup(lookup_actor_request::Key::Name(name.to_owned()))
            .await
    }

    /// Actor `actor_id` in any state (`UNKNOWN_ACTOR` if not known).
    pub async fn lookup_actor_id(&self, actor_id: u64) -> Result<ActorLocation, Status> {
        self.lookup(lookup_actor_request::Key::ActorId(actor_id))
            .await
    }

    async fn lookup(&self, key: lookup_actor_request::Key) -> Result<ActorLocation, Status> {
        let req = LookupActorRequest { key: Some(key) };
        Ok(self.inner.clone().lookup_actor(req).await?.into_inner())
    }

    // ---- jobs and KV ---------------------------------------------------

    pub async fn start_job(&self, driver_address: &str, description: &str) -> Result<u64, Status> {
        let req = StartJobRequest {
            driver_address: driver_address.to_owned(),
            description: description.to_owned(),
        };
        Ok(self.inner.clone().start_job(req).await?.into_inner().job_id)
    }

    pub async fn end_job(&self, job_id: u64) -> Result<(), Status> {
        self.inner.clone().end_job(EndJobRequest { job_id }).await?;
        Ok(())
    }

    /// Returns whether the value was stored (false: the key existed and
    /// `overwrite` was false).
    pub async fn kv_put(
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
        Ok(self.inner.clone().kv_put(req).await?.into_inner().written)
    }

    pub async fn kv_get(&self, ns: &str, key: &str) -> Result<Option<Bytes>, Status> {
        let req = KvGetRequest {
            ns: ns.to_owned(),
            key: key.to_owned(),
        };
        Ok(self.inner.clone().kv_get(req).await?.into_inner().value)
    }

    pub async fn kv_delete(&self, ns: &str, key: &str) -> Result<bool, Status> {
        let req = KvDeleteRequest {
            ns: ns.to_owned(),
            key: key.to_owned(),
        };
        Ok(self
            .inner
            .clone()
            .kv_delete(req)
            .await?
            .into_inner()
            .deleted)
    }

    pub async fn kv_keys(&self, ns: &str, prefix: &str) -> Result<Vec<String>, Status> {
        let req = KvKeysRequest {
            ns: ns.to_owned(),
            prefix: prefix.to_owned(),
        };
        Ok(self.inner.clone().kv_keys(req).await?.into_inner().keys)
    }

    // ---- placement groups --------------------------------------------

    /// Creates a group: rejected at once when it can never fit
    /// (`INFEASIBLE`) or names an unknown node (`UNKNOWN_NODE`); otherwise
    /// returned `PG_CREATED`, or `PG_PENDING` while resources are busy.
    pub async fn pg_create(
        &self,
        req: CreatePlacementGroupRequest,
    ) -> Result<PlacementGroupInfo, Status> {
        Ok(self
            .inner
            .clone()
            .create_placement_group(req)
            .await?
            .into_inner())
    }

    pub async fn pg_get(&self, id: u64) -> Result<PlacementGroupInfo, Status> {
        let req = PlacementGroupId { id };
        Ok(self
            .inner
            .clone()
            .get_placement_group(req)
            .await?
            .into_inner())
    }

    /// Waits up to `timeout` for the group to leave `PG_PENDING`; returns it
    /// as it is then (check `state`: still pending on timeout).
    pub async fn pg_wait(&self, id: u64, timeout: Duration) -> Result<PlacementGroupInfo, Status> {
        let req = WaitPlacementGroupRequest {
            id,
            timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
        };
        Ok(self
            .inner
            .clone()
            .wait_placement_group(req)
            .await?
            .into_inner())
    }

    /// Removes the group; its bundles are released on every node.
    pub async fn pg_remove(&self, id: u64) -> Result<(), Status> {
        let req = PlacementGroupId { id };
        self.inner.clone().remove_placement_group(req).await?;
        Ok(())
    }
}
