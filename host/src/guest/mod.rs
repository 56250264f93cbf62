//! Everything that touches a guest: the WIT types, the host imports, the
//! per-instance context, what a host call may reach, zero-copy views and
//! running exports.

pub mod arrays;
pub mod buffer;
pub mod ctx;
pub mod exec;
pub mod host_api;
mod read;
pub mod resident;
pub mod services;
pub mod spent;
pub mod types;
pub mod views;
pub mod warm;

pub use services::{Dispatch, HostServices};
