//! Safe wrappers over the host functions: logging, objects, tasks and actors.

use crate::abi::{self, RetArea};
use crate::error::Result;
use crate::imports;
use crate::msgpack::{self, Value};
use crate::types::{Arg, ObjectId, ObjectRef};

/// Severity of a log line (the WIT `log-level` enum; the discriminant is the ABI value).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// Very detailed tracing.
    Trace = 0,
    /// Debugging detail.
    Debug = 1,
    /// Normal information.
    Info = 2,
    /// Something unexpected but handled.
    Warn = 3,
    /// A failure.
    Error = 4,
}

/// Writes a line to the running task's log.
pub fn log(level: Level, message: &str) {
    // SAFETY: `message` is a valid UTF-8 buffer for the duration of the call.
    unsafe { imports::log(level as i32, message.as_ptr(), message.len()) }
}

/// Logs at [`Level::Trace`].
pub fn trace(message: &str) {
    log(Level::Trace, message)
}

/// Logs at [`Level::Debug`].
pub fn debug(message: &str) {
    log(Level::Debug, message)
}

/// Logs at [`Level::Info`].
pub fn info(message: &str) {
    log(Level::Info, message)
}

/// Logs at [`Level::Warn`].
pub fn warn(message: &str) {
    log(Level::Warn, message)
}

/// Logs at [`Level::Error`].
pub fn error(message: &str) {
    log(Level::Error, message)
}

/// Stores `data` as a new immutable object owned by the running task.
pub fn put(data: &[u8]) -> Result<ObjectRef> {
    let mut ret = RetArea::new();
    // SAFETY: `data` is readable for the call; `ret` is a 24-byte, 8-aligned area.
    unsafe {
        imports::put(data.as_ptr(), data.len(), ret.as_mut_ptr());
        abi::lift_result_object_ref(&ret)
    }
}

/// Stores a MessagePack-encoded value as a new object.
pub fn put_value(value: &Value) -> Result<ObjectRef> {
    put(&msgpack::encode(value))
}

/// Stores `xs` as a new object of little-endian `f64`s (readable with `View::as_f64s`).
pub fn put_f64s(xs: &[f64]) -> Result<ObjectRef> {
    #[cfg(target_endian = "little")]
    {
        // SAFETY: any f64 is 8 initialized bytes; a little-endian target stores exactly
        // the bytes we want, so the slice is reinterpreted without copying.
        let bytes = unsafe {
            std::slice::from_raw_parts(xs.as_ptr() as *const u8, std::mem::size_of_val(xs))
        };
        put(bytes)
    }
    #[cfg(not(target_endian = "little"))]
    {
        let bytes: Vec<u8> = xs.iter().flat_map(|x| x.to_le_bytes()).collect();
        put(&bytes)
    }
}

/// The size of an object in bytes, waiting for it if it is a pending task result.
pub fn object_size(id: ObjectId) -> Result<u64> {
    let mut ret = RetArea::new();
    // SAFETY: `ret` is a 16+-byte, 8-aligned area.
    unsafe {
        imports::object_size(id as i64, ret.as_mut_ptr());
        abi::lift_result_u64(&ret)
    }
}

/// A reference (id and size) to an object, waiting for it if it is pending.
pub fn object(id: ObjectId) -> Result<ObjectRef> {
    Ok(ObjectRef::new(id, object_size(id)?))
}

/// Copies an object's bytes into the guest, waiting for it if it is pending.
pub fn get(id: ObjectId) -> Result<Vec<u8>> {
    let mut ret = RetArea::new();
    // SAFETY: `ret` is a 12+-byte, 8-aligned area.
    unsafe {
        imports::get(id as i64, ret.as_mut_ptr());
        abi::lift_result_bytes(&ret)
    }
}

/// Copies an object and decodes it as MessagePack (e.g. the result of a submitted task).
pub fn get_value(id: ObjectId) -> Result<Value> {
    msgpack::decode(&get(id)?).map_err(|e| e.context(format_args!("object {}", id)))
}

/// Submits a task: `function` of `module` (a module hash, or `""` for this module).
/// Returns the id of the task's future result object; read it with [`get`] or [`get_value`].
pub fn submit(module: &str, function: &str, args: &[Arg]) -> Result<ObjectId> {
    let list = abi::lower_args(args);
    let mut ret = RetArea::new();
    // SAFETY: every buffer (strings, the arg array and the inline bytes it points to,
    // borrowed from `args`) lives until the call returns; `ret` is suitably sized.
    unsafe {
        imports::submit(
            module.as_ptr(),
            module.len(),
            function.as_ptr(),
            function.len(),
            list.as_ptr() as *const u8,
            list.len(),
            ret.as_mut_ptr(),
        );
        abi::lift_result_u64(&ret)
    }
}

/// A handle to an actor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ActorRef {
    /// The actor's id.
    pub id: u64,
}

impl ActorRef {
    /// Calls `method`; returns the id of the future result object.
    pub fn call(&self, method: &str, args: &[Arg]) -> Result<ObjectId> {
        actor_call(self.id, method, args)
    }

    /// Calls `method` and waits for its result, decoded as MessagePack.
    pub fn call_value(&self, method: &str, args: &[Arg]) -> Result<Value> {
        get_value(self.call(method, args)?)
    }
}

/// Creates an actor of `class` from `module` (a module hash, or `""` for this module);
/// a `name` makes it findable with [`actor_lookup`].
pub fn actor_create(
    module: &str,
    class: &str,
    args: &[Arg],
    name: Option<&str>,
) -> Result<ActorRef> {
    let list = abi::lower_args(args);
    let (some, name_ptr, name_len) = match name {
        Some(n) => (1, n.as_ptr(), n.len()),
        None => (0, std::ptr::null(), 0),
    };
    let mut ret = RetArea::new();
    // SAFETY: all buffers outlive the call; `ret` is suitably sized.
    unsafe {
        imports::actor_create(
            module.as_ptr(),
            module.len(),
            class.as_ptr(),
            class.len(),
            list.as_ptr() as *const u8,
            list.len(),
            some,
            name_ptr,
            name_len,
            ret.as_mut_ptr(),
        );
        abi::lift_result_u64(&ret).map(|id| ActorRef { id })
    }
}

/// Finds a named actor.
pub fn actor_lookup(name: &str) -> Result<ActorRef> {
    let mut ret = RetArea::new();
    // SAFETY: `name` outlives the call; `ret` is suitably sized.
    unsafe {
        imports::actor_lookup(name.as_ptr(), name.len(), ret.as_mut_ptr());
        abi::lift_result_u64(&ret).map(|id| ActorRef { id })
    }
}

/// The id of the node this task or actor runs on (as `host status` shows it).
pub fn node_id() -> String {
    let mut ret = RetArea::new();
    // SAFETY: `ret` is suitably sized; the host writes a string (ptr, len) it
    // allocated in our memory with `cabi_realloc`.
    unsafe {
        imports::node_id(ret.as_mut_ptr());
        abi::lift_string(&ret)
    }
}

/// Calls `method` of actor `actor`; returns the id of the future result object.
pub fn actor_call(actor: u64, method: &str, args: &[Arg]) -> Result<ObjectId> {
    let list = abi::lower_args(args);
    let mut ret = RetArea::new();
    // SAFETY: all buffers outlive the call; `ret` is suitably sized.
    unsafe {
        imports::actor_call(
            actor as i64,
            method.as_ptr(),
            method.len(),
            list.as_ptr() as *const u8,
            list.len(),
            ret.as_mut_ptr(),
        );
        abi::lift_result_u64(&ret)
    }
}
