//! Protobuf messages and gRPC stubs for every Reef RPC, generated from `reef.proto`,
//! and the cluster-token interceptors every service and client uses.

pub mod auth;

#[allow(clippy::all)]
pub mod v1 {
    tonic::include_proto!("reef.v1");
}
pub use v1::*;
