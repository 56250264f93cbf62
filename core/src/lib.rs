//! The concepts every Reef crate shares, defined once: the host, the control
//! plane and the Rust driver all use these.
//!
//! * [`ids`] — the bit layout of object and actor ids (owner node, session
//!   slot, counter); the ids stay `u64` on the wire.
//! * [`Strategy`] — where a task or actor runs, and its wire form.
//! * [`Resources`] — what a call asks for or a node offers, the one float
//!   tolerance, and the wire's resource maps.
//! * [`ReefError`] — the typed error, its proto form, and its gRPC form (a
//!   status whose details carry the encoded `reef.v1.Error`).
//! * [`channel`] — how every gRPC client connects.
//! * [`RetryPolicy`] — a task's retries and the failures that allow one.
//! * [`tenant`] — who work belongs to ([`TenantId`]) and who is asking
//!   ([`Caller`]: node, admin or tenant credential).
//! * [`tls`] — TLS for TCP connections: certificates, the client trust,
//!   streams that may be encrypted.
//! * [`segments`] — the descriptor socket where a driver on the node's
//!   machine takes the memfds of its own objects.
//! * [`spin`] — a runtime thread spins briefly on its sockets before it
//!   sleeps (a VM's idle vCPU is slow to wake).
//! * [`wire`] — the raw object connections to a node's port: pulls (node to
//!   node, and remote drivers' gets) and pushes (remote drivers' puts).

pub mod channel;
mod error;
pub mod ids;
mod resources;
pub mod retry;
pub mod segments;
pub mod slice;
pub mod spin;
mod strategy;
pub mod tenant;
pub mod tls;
pub mod wire;

pub use error::{grpc_code, ErrorCode, ReefError, ReefResult};
pub use ids::{ActorId, IdPrefix, ObjectId};
pub use resources::{Resources, ResourcesError, EPSILON};
pub use retry::{RetryExceptions, RetryPolicy};
pub use strategy::Strategy;
pub use tenant::{Caller, TenantId};
