//! Reef guest SDK for Rust: write Reef tasks and actors as a wasm32-wasi module.
//!
//! The module implements the `module` world of `wit/reef.wit` (package
//! `reef:runtime@0.2.0`) through a hand-written canonical ABI, so it builds with any
//! Rust from 1.63 on and needs no dependencies. See README.md for a walkthrough.
//!
//! ```ignore
//! use reef_guest::prelude::*;
//!
//! fn add(args: &Args) -> Result<f64> {
//!     Ok(args.f64(0)? + args.f64(1)?)
//! }
//!
//! reef_guest::export_module! { tasks: [add] }
//! ```
#![warn(missing_docs, unsafe_op_in_unsafe_fn)]

mod abi;
mod actor;
mod args;
mod error;
#[doc(hidden)]
pub mod export;
pub mod f64s;
mod host;
mod imports;
pub mod msgpack;
#[cfg(test)]
mod msgpack_golden;
mod panic;
pub mod raw;
mod types;
mod view;

pub use actor::Actor;
pub use args::Args;
pub use error::{Code, Error, Result};
pub use host::{
    actor_call, actor_create, actor_lookup, debug, error, get, get_value, info, log, node_id,
    object, object_size, put, put_f64s, put_value, submit, trace, warn, ActorRef, Level,
};
pub use msgpack::Value;
pub use types::{Arg, ObjectId, ObjectRef, Output};
pub use view::{Element, View};

/// The names most guests need: `use reef_guest::prelude::*;`.
pub mod prelude {
    pub use crate::{Actor, Arg, Args, Code, Error, ObjectRef, Output, Result, Value, View};
}
