//! The Rust driver for Reef.
//!
//! ```no_run
//! # async fn demo() -> reef::Result<()> {
//! let cluster = reef::Cluster::local().await?; // or Cluster::connect("127.0.0.1:6390")
//! let module = cluster.register_file("target/guests/demo.wasm").await?;
//! let sum = cluster.task(&module, "add").arg(1.0).arg(2.0).submit()?;
//! assert_eq!(cluster.get::<f64>(&sum).await?, 3.0);
//! # Ok(()) }
//! ```
//!
//! Values passed inline are MessagePack (what every guest SDK reads);
//! large objects on the node's machine are written and read in place,
//! each in a shared-memory segment (memfd) of its own that the node hands
//! only to this session; from another machine (or with
//! [`ConnectOptions::same_machine`] off) they are streamed over raw TCP
//! connections to the node's port.

mod args;
mod cluster;
mod connect;
mod connection;
mod error;
mod groups;
mod local;
mod object;
mod options;
mod segments;
mod session;
mod state;
mod stream;

pub use args::Arg;
pub use cluster::{
    ActorBuilder, ActorCall, ActorHandle, Cluster, Lifetime, Logs, Module, TaskBuilder,
};
pub use connect::{ConnectOptions, SAME_MACHINE_ENV, TLS_CA_ENV};
pub use error::{Error, ErrorCode, Result};
pub use groups::{PlacementGroup, PlacementGroupBuilder, PlacementStrategy};
pub use local::host_binary;
pub use object::{ObjectData, ObjectRef};
pub use options::{CallOptions, Grant, ModuleOptions, RetryExceptions, Strategy};
pub use reef_proto::StatusReply;
pub use session::DEFAULT_RECONNECT_TIMEOUT;
pub use state::{
    ActorInfo, BundleInfo, JobRow, ListOptions, Listing, LogLine, ModuleRow, NodeStatus,
    ObjectInfo, Summary, SummaryKind, SummaryRow, TaskInfo,
};
