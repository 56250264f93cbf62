//! Reef's control plane: the `reef.v1.ControlPlane` service the head node
//! runs, and the clients nodes and drivers reach it through.
//!
//! It is the cluster's source of truth for metadata, playing the role of
//! Ray's GCS:
//!
//! * **membership**: nodes register, get a cluster-unique index, heartbeat;
//!   a silent node is declared dead (its actors die, its placement groups
//!   are rescheduled);
//! * **the cluster view**: every node, its resources and the placement
//!   groups, pushed to subscribers when it changes;
//! * **the module registry**: Wasm modules' bytes by content hash, fetched by
//!   a node the first time it runs one;
//! * **the actor directory**: where each actor lives, placement of new
//!   actors, cluster-unique names;
//! * **placement groups**: bundles reserved atomically across nodes
//!   ([`placement`] decides where);
//! * **jobs**: one per driver session on any node, with the driver's
//!   address, its node and its start and end times;
//! * **KV**: a small namespaced byte store for drivers and libraries.
//!
//! It holds metadata only: task arguments, results and objects travel
//! between nodes, never through here.
//!
//! # Layers
//!
//! * [`ControlPlane`]: the operations, as a trait. [`GcsClient`] implements
//!   it over gRPC (every node but the head); [`InProcess`] calls the service
//!   in the head's own process. Both behave the same: the gRPC server and
//!   the in-process client call the same service methods.
//! * [`service`]: [`ControlPlaneService`], the service itself. Hot state
//!   (nodes, actors, groups) lives in memory under one lock and is persisted
//!   write-behind; modules, jobs and KV are written through.
//! * [`tables`]: the typed records the service persists (JSON values).
//! * [`Storage`]: the table-scoped byte key/value backend under it all.
//!   [`FileStore`] (one embedded redb file, durable, the default) and
//!   [`RedisStore`] (a Redis server, so a new head anywhere can take over)
//!   implement it.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use reef_gcs::{ControlPlane, ControlPlaneService, FileStore, ServiceConfig};
//!
//! let store = Arc::new(FileStore::open("/tmp/reef-gcs")?);
//! let service = ControlPlaneService::new(store, "a-cluster-token", ServiceConfig::default())?;
//! // The head calls it in process; others serve `service.into_server(token)`
//! // and connect with `GcsClient::connect_lazy`.
//! let control_plane: Arc<dyn ControlPlane> = Arc::new(service.in_process());
//! control_plane.kv_put("ns", "key", "value".into(), true).await?;
//! # Ok(()) }
//! ```

mod backoff;
pub mod client;
mod clock;
pub mod control_plane;
mod error;
mod file_store;
pub mod placement;
mod redis_store;
pub mod retained;
pub mod service;
mod status;
mod storage;
mod storage_spec;
pub mod tables;
#[cfg(test)]
mod test_util;

pub use backoff::Backoff;
pub use client::GcsClient;
pub use clock::now_millis;
pub use control_plane::{ControlPlane, ViewStream};
pub use error::{GcsError, Result};
pub use file_store::{FileStore, DB_FILE};
pub use redis_store::RedisStore;
pub use service::{ControlPlaneService, InProcess, ServiceConfig};
pub use status::reef_status;
pub use storage::{Entry, Storage, WriteOp};
pub use storage_spec::StorageSpec;
pub use tables::{
    ActorRecord, ActorState, ActorTable, JobRecord, JobState, JobTable, Kv, NodeInfo, NodeState,
    NodeTable, Resources,
};
