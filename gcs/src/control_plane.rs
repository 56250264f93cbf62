//! [`ControlPlane`]: the operations nodes and drivers ask of the control
//! plane, whichever way they reach it.
//!
//! Two implementations: [`crate::GcsClient`] calls the head's service over
//! gRPC (every node but the head, tools, benchmarks), and
//! [`crate::service::InProcess`] calls the service's state directly (the
//! head, which runs the service). They share one behaviour: the gRPC server
//! and the in-process client call the same service methods.
//!
//! Errors are [`Status`]es carrying the Reef error in their details
//! (`reef_core::ReefError::from(status)` gets the code back). The in-process
//! client returns the very statuses the server would send.

use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use futures::Stream;
use reef_proto::{
    lookup_actor_request, ActorLocation, ClusterView, CreatePlacementGroupRequest,
    HeartbeatRequest, JobInfo, PlaceActorRequest, PlacementGroupInfo, Principal, RegisterNodeReply,
    RegisterNodeRequest, StartJobRequest, TenantInfo, TenantQuotas,
};
use tonic::Status;

/// The cluster view stream: the full view first, then one per change.
pub type ViewStream = Pin<Box<dyn Stream<Item = Result<ClusterView, Status>> + Send + 'static>>;

/// A client of the control plane. Cheap to share (`Arc<dyn ControlPlane>`).
#[async_trait::async_trait]
pub trait ControlPlane: Send + Sync + std::fmt::Debug {
    // ---- nodes -------------------------------------------------------

    /// A node joins: its index, the heartbeat interval and the current view.
    async fn register(&self, req: RegisterNodeRequest) -> Result<RegisterNodeReply, Status>;

    /// Returns `unknown`: when true the control plane no longer knows the
    /// node (declared dead) and it must stop or register again.
    async fn heartbeat(&self, req: HeartbeatRequest) -> Result<bool, Status>;

    /// The view stream: the full view first, then one per change.
    async fn subscribe(&self, node_id: &str) -> Result<ViewStream, Status>;

    /// Stops placing work on a node (`UNKNOWN_NODE` if not in the cluster).
    async fn drain(&self, node_id: &str, reason: &str) -> Result<(), Status>;

    // ---- modules -----------------------------------------------------

    /// Stores a module's bytes; `hash` must be the hex sha256 of `wasm`.
    async fn put_module(&self, hash: &str, wasm: Bytes) -> Result<(), Status>;

    /// A module's bytes by hash (`UNKNOWN_MODULE` when never stored).
    async fn get_module(&self, hash: &str) -> Result<Bytes, Status>;

    // ---- actors ------------------------------------------------------

    /// Picks the actor's node and claims its name (`NAME_TAKEN`,
    /// `INFEASIBLE`, ... otherwise).
    async fn place_actor(&self, req: PlaceActorRequest) -> Result<ActorLocation, Status>;

    /// `state`: `"ALIVE"` or `"DEAD"` (with `reason`).
    async fn set_actor_state(&self, actor_id: u64, state: &str, reason: &str)
        -> Result<(), Status>;

    /// The directory entry of an actor by name (live actors only) or by id
    /// (any state); `UNKNOWN_ACTOR` if none.
    async fn lookup_actor(&self, key: lookup_actor_request::Key) -> Result<ActorLocation, Status>;

    /// The live actor named `name` (`UNKNOWN_ACTOR` if none).
    async fn lookup_actor_name(&self, name: &str) -> Result<ActorLocation, Status> {
        self.lookup_actor(lookup_actor_request::Key::Name(name.to_owned()))
            .await
    }

    /// Actor `actor_id` in any state (`UNKNOWN_ACTOR` if not known).
    async fn lookup_actor_id(&self, actor_id: u64) -> Result<ActorLocation, Status> {
        self.lookup_actor(lookup_actor_request::Key::ActorId(actor_id))
            .await
    }

    // ---- jobs --------------------------------------------------------

    /// Records a driver session as a job; returns its id.
    async fn start_job(&self, req: StartJobRequest) -> Result<u64, Status>;

    /// Marks a job finished at `ended_at_ms` (unix millis; 0: now).
    async fn end_job(&self, job_id: u64, ended_at_ms: u64) -> Result<(), Status>;

    /// Every job recorded, running and finished, by id.
    async fn list_jobs(&self) -> Result<Vec<JobInfo>, Status>;

    // ---- KV ----------------------------------------------------------

    /// Returns whether the value was stored (false: the key existed and
    /// `overwrite` was false).
    async fn kv_put(
        &self,
        ns: &str,
        key: &str,
        value: Bytes,
        overwrite: bool,
    ) -> Result<bool, Status>;

    async fn kv_get(&self, ns: &str, key: &str) -> Result<Option<Bytes>, Status>;

    /// Returns whether the key existed.
    async fn kv_delete(&self, ns: &str, key: &str) -> Result<bool, Status>;

    /// Keys of `ns` starting with `prefix`, in byte order.
    async fn kv_keys(&self, ns: &str, prefix: &str) -> Result<Vec<String>, Status>;

    // ---- placement groups --------------------------------------------

    /// Creates a group: rejected at once when it can never fit
    /// (`INFEASIBLE`) or names an unknown node (`UNKNOWN_NODE`); otherwise
    /// returned `PG_CREATED`, or `PG_PENDING` while resources are busy.
    async fn pg_create(
        &self,
        req: CreatePlacementGroupRequest,
    ) -> Result<PlacementGroupInfo, Status>;

    async fn pg_get(&self, id: u64) -> Result<PlacementGroupInfo, Status>;

    /// Waits up to `timeout` for the group to leave `PG_PENDING`; returns it
    /// as it is then (check `state`: still pending on timeout).
    async fn pg_wait(&self, id: u64, timeout: Duration) -> Result<PlacementGroupInfo, Status>;

    /// Removes the group; its bundles are released on every node.
    async fn pg_remove(&self, id: u64) -> Result<(), Status>;

    // ---- credentials and tenants ---------------------------------------

    /// Who holds the token whose sha256 is `token_sha256`: the admin or a
    /// tenant (`None`: nobody; the node credential is not a principal).
    async fn authenticate(&self, token_sha256: &[u8]) -> Result<Option<Principal>, Status>;

    /// Creates a tenant whose token has the sha256 `token_sha256`
    /// (`NAME_TAKEN` if the name is taken).
    async fn add_tenant(
        &self,
        name: &str,
        token_sha256: &[u8],
        quotas: TenantQuotas,
    ) -> Result<TenantInfo, Status>;

    /// Replaces a tenant's quotas; the next view carries them to every node.
    async fn set_tenant_quotas(
        &self,
        name: &str,
        quotas: TenantQuotas,
    ) -> Result<TenantInfo, Status>;

    /// Every tenant, by name.
    async fn list_tenants(&self) -> Result<Vec<TenantInfo>, Status>;

    /// Revokes a tenant; the next view no longer carries its credential.
    async fn remove_tenant(&self, name: &str) -> Result<TenantInfo, Status>;
}
