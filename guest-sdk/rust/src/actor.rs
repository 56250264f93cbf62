//! The `Actor` trait: stateful objects whose methods run in one long-lived instance.

use crate::args::Args;
use crate::error::Result;
use crate::types::Output;

/// An actor class exported by a module (list it in `export_module!`'s `actors`).
///
/// The host creates one instance per actor, calls [`Actor::new`] once, then
/// [`Actor::call`] for every method call, in order.
///
/// ```ignore
/// struct Counter { n: u64 }
///
/// impl reef_guest::Actor for Counter {
///     const METHODS: &'static [&'static str] = &["incr", "get"];
///
///     fn new(args: &Args) -> Result<Self> {
///         Ok(Counter { n: if args.is_nil(0) { 0 } else { args.u64(0)? } })
///     }
///
///     fn call(&mut self, method: &str, _args: &Args) -> Result<Output> {
///         match method {
///             "incr" => { self.n += 1; Ok(self.n.into()) }
///             "get" => Ok(self.n.into()),
///             _ => Err(format!("no method {}", method).into()),
///         }
///     }
/// }
/// ```
pub trait Actor: Sized + 'static {
    /// The names of the methods [`Actor::call`] accepts (reported by `describe`; calls to
    /// other names are rejected before reaching `call`).
    const METHODS: &'static [&'static str];

    /// Creates the actor's state from the creation arguments.
    fn new(args: &Args) -> Result<Self>;

    /// Runs one method call.
    fn call(&mut self, method: &str, args: &Args) -> Result<Output>;
}

/// Object-safe form of [`Actor`], used to keep the one actor of an instance.
#[doc(hidden)]
pub trait DynActor {
    /// Forwards to [`Actor::call`].
    fn call_dyn(&mut self, method: &str, args: &Args) -> Result<Output>;
}

impl<A: Actor> DynActor for A {
    fn call_dyn(&mut self, method: &str, args: &Args) -> Result<Output> {
        self.call(method, args)
    }
}
