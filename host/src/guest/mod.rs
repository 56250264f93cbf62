//! Everything that touches a guest: the WIT types, the host imports, the
//! per-instance context, zero-copy views and running exports.

pub mod buffer;
pub mod ctx;
pub mod exec;
pub mod host_api;
pub mod types;
pub mod views;
