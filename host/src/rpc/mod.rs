//! gRPC: the node's service and its driver sessions.

pub mod service;
pub mod session;

pub use service::NodeService;
