//! The raw core-wasm imports of interface `reef:runtime/host@0.2.0` (canonical ABI, flattened).
//!
//! Pointers and lengths are `i32` in wasm32; results with more than one flat value are
//! written to `ret`, a caller-provided area laid out as described in `abi.rs`.
//! Off wasm32 (host unit tests, `cargo check`) every function panics.

#[cfg(target_arch = "wasm32")]
#[link(wasm_import_module = "reef:runtime/host@0.2.0")]
extern "C" {
    #[link_name = "log"]
    pub fn log(level: i32, msg_ptr: *const u8, msg_len: usize);
    #[link_name = "report-panic"]
    pub fn report_panic(msg_ptr: *const u8, msg_len: usize);
    #[link_name = "put"]
    pub fn put(data_ptr: *const u8, data_len: usize, ret: *mut u8);
    #[link_name = "object-size"]
    pub fn object_size(id: i64, ret: *mut u8);
    #[link_name = "get"]
    pub fn get(id: i64, ret: *mut u8);
    #[link_name = "map-view"]
    pub fn map_view(id: i64, buf_ptr: *mut u8, buf_len: usize, ret: *mut u8);
    #[link_name = "release-view"]
    pub fn release_view(buf_ptr: *mut u8, buf_len: usize);
    #[link_name = "submit"]
    pub fn submit(
        module_ptr: *const u8,
        module_len: usize,
        function_ptr: *const u8,
        function_len: usize,
        args_ptr: *const u8,
        args_len: usize,
        ret: *mut u8,
    );
    #[link_name = "actor-create"]
    pub fn actor_create(
        module_ptr: *const u8,
        module_len: usize,
        class_ptr: *const u8,
        class_len: usize,
        args_ptr: *const u8,
        args_len: usize,
        name_is_some: i32,
        name_ptr: *const u8,
        name_len: usize,
        ret: *mut u8,
    );
    #[link_name = "actor-lookup"]
    pub fn actor_lookup(name_ptr: *const u8, name_len: usize, ret: *mut u8);
    #[link_name = "node-id"]
    pub fn node_id(ret: *mut u8);
    #[link_name = "actor-call"]
    pub fn actor_call(
        actor: i64,
        method_ptr: *const u8,
        method_len: usize,
        args_ptr: *const u8,
        args_len: usize,
        ret: *mut u8,
    );
}

#[cfg(not(target_arch = "wasm32"))]
pub use self::native::*;

/// Stand-ins with the same signatures so the SDK builds and unit-tests on the build machine.
#[cfg(not(target_arch = "wasm32"))]
#[allow(clippy::too_many_arguments, clippy::missing_safety_doc)]
mod native {
    fn unavailable(name: &str) -> ! {
        panic!(
            "reef host function `{}` is only available inside a Reef worker (wasm32)",
            name
        )
    }

    pub unsafe fn log(_: i32, _: *const u8, _: usize) {
        unavailable("log")
    }
    pub unsafe fn report_panic(_: *const u8, _: usize) {
        // Called from the panic hook: do nothing so that test panics stay readable.
    }
    pub unsafe fn put(_: *const u8, _: usize, _: *mut u8) {
        unavailable("put")
    }
    pub unsafe fn object_size(_: i64, _: *mut u8) {
        unavailable("object-size")
    }
    pub unsafe fn get(_: i64, _: *mut u8) {
        unavailable("get")
    }
    pub unsafe fn map_view(_: i64, _: *mut u8, _: usize, _: *mut u8) {
        unavailable("map-view")
    }
    pub unsafe fn release_view(_: *mut u8, _: usize) {
        unavailable("release-view")
    }
    pub unsafe fn submit(
        _: *const u8,
        _: usize,
        _: *const u8,
        _: usize,
        _: *const u8,
        _: usize,
        _: *mut u8,
    ) {
        unavailable("submit")
    }
    pub unsafe fn actor_create(
        _: *const u8,
        _: usize,
        _: *const u8,
        _: usize,
        _: *const u8,
        _: usize,
        _: i32,
        _: *const u8,
        _: usize,
        _: *mut u8,
    ) {
        unavailable("actor-create")
    }
    pub unsafe fn actor_lookup(_: *const u8, _: usize, _: *mut u8) {
        unavailable("actor-lookup")
    }
    pub unsafe fn node_id(_: *mut u8) {
        unavailable("node-id")
    }
    pub unsafe fn actor_call(_: i64, _: *const u8, _: usize, _: *const u8, _: usize, _: *mut u8) {
        unavailable("actor-call")
    }
}
