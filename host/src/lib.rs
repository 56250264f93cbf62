//! The Reef node daemon (`host`): a wasmtime engine running guest tasks and
//! actors, a local scheduler, the shared-memory object store and the gRPC
//! API drivers use. With `--head` it also runs the control plane (`reef-gcs`).
//!
//! A task's path: `rpc::session` receives a submission → `tasks` asks
//! `placement` where it runs, waits for its object arguments in `objects`
//! and for resources in `scheduler` → `guest::exec` instantiates the module
//! from `modules` in a fresh pooled instance and calls it → the output is
//! sealed into the object store and wakes whoever waits. `node` wires the
//! services together. See `docs/architecture.md`.

pub mod actors;
pub mod cli;
pub mod cluster;
pub mod componentize;
pub mod config;
pub mod dashboard;
pub mod engine;
pub mod error;
pub mod fastmap;
pub mod grants;
pub mod guest;
pub mod ids;
pub mod jobs;
pub mod lineage;
pub mod logs;
pub mod metrics;
pub mod module;
pub mod module_owners;
pub mod modules;
pub mod node;
pub mod objects;
pub mod owners;
pub mod placement;
pub mod quotas;
pub mod rpc;
pub mod runtime;
pub mod scheduler;
pub mod session_slots;
pub mod spec;
pub mod store;
pub mod strip;
pub mod submission;
pub mod tasks;
pub mod timeline;
pub mod tls;
pub mod token;
pub mod transfer;
