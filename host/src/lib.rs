//! The Reef node daemon (`host`): a wasmtime engine running guest tasks and
//! actors, a local scheduler, the shared-memory object store and the gRPC
//! API drivers use. With `--head` it also runs the control plane (`reef-gcs`).
//!
//! A task's path: `rpc::session` receives a submission → `tasks` waits for its
//! object arguments in `store` and for resources in `scheduler` → `guest::exec`
//! instantiates the module from `modules` in a fresh pooled instance and
//! calls it → the output is sealed into `store` and wakes whoever waits.
//! See `docs/architecture.md`.

pub mod actors;
pub mod cli;
pub mod cluster;
pub mod componentize;
pub mod control;
pub mod engine;
pub mod error;
pub mod grants;
pub mod guest;
pub mod modules;
pub mod node;
pub mod rpc;
pub mod scheduler;
pub mod session_slots;
pub mod status;
pub mod store;
pub mod strip;
pub mod tasks;
pub mod token;
pub mod transfer;
