//! gRPC: the node's service and its driver sessions, and the credential
//! check in front of them all (`auth`).

pub mod auth;
pub mod fds;
pub mod groups;
pub mod peer;
pub mod service;
pub mod session;
pub mod state;
pub mod status;
pub mod tenants;
mod token_lookups;

pub use service::NodeService;
