//! Rust mirrors of the WIT types in `wit/reef.wit` (lifted and lowered by
//! wasmtime's component derives; instantiation type-checks them against the
//! guest).

use wasmtime::component::{ComponentType, Lift, Lower};

/// The WIT interface names, with the contract's version.
pub const WIT_VERSION: &str = "0.1.0";
pub const HOST_INTERFACE: &str = "reef:runtime/host@0.1.0";
pub const GUEST_INTERFACE: &str = "reef:runtime/guest@0.1.0";

#[derive(ComponentType, Lift, Lower, Clone, Copy, Debug)]
#[component(record)]
pub struct ObjectRef {
    pub id: u64,
    pub size: u64,
}

#[derive(ComponentType, Lift, Lower, Clone, Debug)]
#[component(variant)]
pub enum Arg {
    #[component(name = "inline")]
    Inline(Vec<u8>),
    #[component(name = "object")]
    Object(ObjectRef),
}

#[derive(ComponentType, Lift, Lower, Clone, Debug)]
#[component(variant)]
pub enum Output {
    #[component(name = "bytes")]
    Bytes(Vec<u8>),
    #[component(name = "object")]
    Object(u64),
}

#[derive(ComponentType, Lift, Lower, Clone, Debug)]
#[component(record)]
pub struct ActorClass {
    pub name: String,
    pub methods: Vec<String>,
}

#[derive(ComponentType, Lift, Lower, Clone, Debug)]
#[component(record)]
pub struct ModuleInfo {
    pub sdk: String,
    pub tasks: Vec<String>,
    pub actors: Vec<ActorClass>,
}

#[derive(ComponentType, Lift, Lower, Clone, Copy, Debug)]
#[component(enum)]
#[repr(u8)]
pub enum LogLevel {
    #[component(name = "trace")]
    Trace,
    #[component(name = "debug")]
    Debug,
    #[component(name = "info")]
    Info,
    #[component(name = "warn")]
    Warn,
    #[component(name = "error")]
    Error,
}
