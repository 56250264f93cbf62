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
//!
//! Every future of the API is `Send`: spawn calls on any runtime.
//!
//! # Latency
//!
//! On a virtual machine a thread that sleeps waits tens of microseconds
//! for its idle vCPU to wake, on each side of a round trip. The node spins
//! briefly before it sleeps; a driver does too when its runtime runs
//! [`spin::before_park`] before parking. A current-thread runtime keeps the
//! whole round trip on one thread (a sync task here: ~30 µs, against
//! ~70–100 µs with `#[tokio::main]`):
//!
//! ```no_run
//! fn main() -> reef::Result<()> {
//!     reef::runtime().block_on(async {
//!         let cluster = reef::Cluster::local().await?;
//!         // ...
//!         Ok(())
//!     })
//! }
//! ```

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
/// A short scheduler slice for a driver's thread (`REEF_SLICE_US`, default
/// 100; `0` leaves the kernel's).
pub use reef_core::slice;
/// Spinning before a runtime thread parks (`REEF_SPIN_US`, default 50;
/// `0` turns it off).
pub use reef_core::spin;
pub use reef_proto::StatusReply;
pub use session::DEFAULT_RECONNECT_TIMEOUT;

/// A current-thread tokio runtime for a driver, spinning briefly before it
/// parks ([`spin::before_park`]): the lowest round-trip latency. The calling
/// thread (the one that will run `block_on`) is given a short scheduler
/// slice ([`mod@slice`]: it runs soon after a reply wakes it, even with every
/// core busy).
///
/// # Panics
/// When the runtime cannot be built (the process is out of descriptors).
pub fn runtime() -> tokio::runtime::Runtime {
    // Best effort: the thread runs as before when the kernel refuses.
    let _ = reef_core::slice::short_slice();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .on_thread_park(spin::before_park)
        .build()
        .expect("building a tokio runtime")
}

pub use state::{
    ActorInfo, BundleInfo, JobRow, ListOptions, Listing, LogLine, ModuleRow, NodeStatus,
    ObjectInfo, Summary, SummaryKind, SummaryRow, TaskInfo,
};

/// Compiled, never run: the API's futures are `Send` (a guard held across
/// an `.await` once made one not).
#[cfg(test)]
#[allow(dead_code, unused_must_use, clippy::let_underscore_future)]
fn futures_are_send(c: Cluster, m: Module, r: ObjectRef, a: ActorHandle, mut g: PlacementGroup) {
    fn send<T: Send>(_: T) {}
    let refs = [r.clone()];
    let list = ListOptions::default();
    send(Cluster::local());
    send(Cluster::connect("x"));
    send(Cluster::connect_with("x", ConnectOptions::default()));
    send(c.wait_connected());
    send(c.register(Vec::<u8>::new()));
    send(c.register_file("x"));
    send(c.put_bytes(&[]));
    send(c.put_f64s(&[]));
    send(c.put(&1u32));
    send(c.get_actor("x"));
    send(c.get_bytes(&r));
    send(c.get_bytes_timeout(&r, std::time::Duration::ZERO));
    send(c.get::<u32>(&r));
    send(c.get_many::<u32>(&refs));
    send(c.get_many_with_progress::<u32>(&refs, |_, _| {}));
    send(c.wait(&refs, 1, None));
    send(c.share(&r, "t"));
    send(c.logs(&r));
    send(c.status());
    send(c.list_nodes(&list));
    send(c.list_tasks(&list));
    send(c.list_actors(&list));
    send(c.list_objects(&list));
    send(c.list_groups(&list));
    send(c.list_jobs(&list));
    send(c.list_modules(&list));
    send(c.get_task_info(1));
    send(c.get_actor_info(1));
    send(c.get_object_info(1));
    send(c.log_stream(1, false));
    send(c.summary(SummaryKind::Tasks));
    send(c.actor(&m, "A").create());
    send(a.kill());
    send(c.placement_group(PlacementStrategy::Pack).create());
    send(g.ready(std::time::Duration::ZERO));
    send(g.remove());
}
