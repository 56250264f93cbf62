//! gRPC: the node's service and its driver sessions.

pub mod groups;
pub mod peer;
pub mod service;
pub mod session;
pub mod state;
pub mod status;

pub use service::NodeService;
