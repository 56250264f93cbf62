//! Reef's control plane: the global control store (GCS).
//!
//! The head node runs one [`Gcs`] in process. It is the cluster's source
//! of truth for metadata, playing the role of Ray's GCS:
//!
//! * **nodes** ([`NodeInfo`]): membership, heartbeats, total and available
//!   resources, failure detection ([`Gcs::expire_nodes`]);
//! * **modules** ([`ModuleRecord`]): the Wasm components uploaded to the
//!   cluster, content-addressed, with the tasks and actor classes they
//!   export;
//! * **actors** ([`ActorRecord`]): lifecycle, placement and cluster-unique
//!   names ([`Gcs::register_named_actor`], [`Gcs::lookup_actor`]);
//! * **jobs** ([`JobRecord`]): one per driver session, ids from a durable
//!   counter;
//! * **KV** ([`Kv`]): a small namespaced byte store for drivers and
//!   libraries, like Ray's internal KV.
//!
//! It holds metadata only: task arguments, results and objects travel on
//! the data plane, never through here.
//!
//! # Layers
//!
//! * [`Storage`]: table-scoped byte key/value backend. [`FileStore`]
//!   (embedded redb file, durable; the default) and [`MemoryStore`]
//!   (ephemeral) implement it; a networked backend (Redis) can be added
//!   behind the same small trait.
//! * [`tables`]: typed records, serialized as JSON, one table each.
//! * [`Gcs`]: the operations and their invariants (name uniqueness, id
//!   allocation, liveness). Its methods are synchronous, take `&self`, and
//!   return [`GcsError`], so an RPC service can wrap an `Arc<Gcs>` and map
//!   errors to status codes.
//! * [`service`]: the `ControlPlane` gRPC service the head serves
//!   ([`server`], [`ControlPlaneService`]): membership and failure
//!   detection, the pushed cluster view, the module registry, the actor
//!   directory, jobs, KV and placement groups ([`placement`] places
//!   bundles). Hot state is in memory, persisted write-behind.
//! * [`client`]: [`GcsClient`], the token-carrying client nodes and drivers
//!   use; its errors carry the Reef error in the status details
//!   (`reef_core::ReefError::from(status)`).
//!
//! ```
//! use reef_gcs::{ActorRecord, Gcs, NodeInfo, Resources};
//!
//! let gcs = Gcs::in_memory();
//! gcs.register_node(NodeInfo::new("n1", "127.0.0.1:7000", Resources::from([("CPU".into(), 4.0)])))?;
//! let job = gcs.start_job("127.0.0.1:5000", "demo")?;
//! let id = gcs.new_actor_id()?;
//! gcs.register_named_actor("counter", ActorRecord::new(id, "ab12", "Counter", job))?;
//! assert_eq!(gcs.lookup_actor("counter")?.map(|a| a.actor_id), Some(id));
//! # Ok::<(), reef_gcs::GcsError>(())
//! ```

pub mod client;
mod clock;
mod error;
mod file_store;
mod gcs;
mod memory_store;
pub mod placement;
pub mod service;
mod status;
mod storage;
pub mod tables;
#[cfg(test)]
mod test_util;

pub use client::GcsClient;
pub use clock::now_millis;
pub use error::{GcsError, Result};
pub use file_store::{FileStore, DB_FILE};
pub use gcs::Gcs;
pub use memory_store::MemoryStore;
pub use service::{server, ControlPlaneService, ServiceConfig};
pub use status::reef_status;
pub use storage::{Entry, Storage, WriteOp};
pub use tables::{
    ActorClassInfo, ActorRecord, ActorState, ActorTable, JobRecord, JobState, JobTable, Kv,
    ModuleRecord, ModuleTable, NodeInfo, NodeState, NodeTable, Resources,
};
