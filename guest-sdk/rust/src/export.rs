//! The runtime behind [`export_module!`](crate::export_module): the `guest` interface's
//! exports, dispatch to tasks and the actor, and `cabi_realloc` / `cabi_post_*`.
//!
//! Items here are public only so that the macro can reach them.

use crate::abi::{self, KeepAlive, RetArea};
use crate::actor::{Actor, DynActor};
use crate::args::Args;
use crate::error::{Code, Error, Result};
use crate::panic::install_hook;
use crate::types::Output;
use std::cell::{RefCell, UnsafeCell};

/// The `sdk` string reported by `describe`.
pub const SDK: &str = "reef-guest-rust/0.1.0";

/// A task: its exported name and its entry point.
pub struct Task {
    /// The task's name (the Rust function's name).
    pub name: &'static str,
    /// Runs the task.
    pub run: fn(&Args) -> Result<Output>,
}

/// An actor class: its name, methods and constructor.
pub struct ActorClass {
    /// The class name (the Rust type's name).
    pub name: &'static str,
    /// `Actor::METHODS`.
    pub methods: &'static [&'static str],
    /// Creates the actor's state.
    pub create: fn(&Args) -> Result<Box<dyn DynActor>>,
}

/// Everything a module exports.
pub struct Module {
    /// The tasks.
    pub tasks: &'static [Task],
    /// The actor classes.
    pub actors: &'static [ActorClass],
}

/// Converts a task's `Result<T>` into `Result<Output>`.
pub fn into_output<T: Into<Output>>(result: Result<T>) -> Result<Output> {
    result.map(Into::into)
}

/// Constructor of actor class `A`, as stored in [`ActorClass::create`].
pub fn create_actor<A: Actor>(args: &Args) -> Result<Box<dyn DynActor>> {
    Ok(Box::new(A::new(args)?))
}

/// The return area of every export (the host reads it before calling `cabi_post_*`).
struct ExportRet(UnsafeCell<RetArea>);

// SAFETY: a wasm32 guest instance is single-threaded and the component model never
// re-enters an instance while an export runs, so the area is never shared.
unsafe impl Sync for ExportRet {}

static RET: ExportRet = ExportRet(UnsafeCell::new(RetArea::new()));

thread_local! {
    /// What the last export's return area points to, freed by `cabi_post_*`.
    static KEEP: RefCell<KeepAlive> = RefCell::new(None);
    /// The actor of this instance (index of its class, state), set by `actor-init`.
    static ACTOR: RefCell<Option<(usize, Box<dyn DynActor>)>> = RefCell::new(None);
}

/// Fills the return area with `write` and keeps what it references alive.
fn finish(write: impl FnOnce(&mut RetArea) -> KeepAlive) -> *mut u8 {
    // SAFETY: see `ExportRet`: this is the only reference to the area while the export
    // runs; the host reads it after we return.
    let ret = unsafe { &mut *RET.0.get() };
    let keep = write(ret);
    KEEP.with(|k| *k.borrow_mut() = keep);
    ret.as_mut_ptr()
}

/// Flushes buffered stdout so that `print!` output is not lost when the instance ends.
fn flush_stdout() {
    use std::io::Write;
    let _ = std::io::stdout().flush();
}

/// Export `describe`.
pub fn describe(module: &Module) -> *mut u8 {
    install_hook();
    let tasks: Vec<&'static str> = module.tasks.iter().map(|t| t.name).collect();
    let actors: Vec<(&'static str, &'static [&'static str])> =
        module.actors.iter().map(|a| (a.name, a.methods)).collect();
    finish(|ret| abi::lower_module_info(ret, SDK, &tasks, &actors))
}

/// Export `run-task`.
///
/// # Safety
/// The parameters must be a `string` and a `list<arg>` the host allocated through `cabi_realloc`.
pub unsafe fn run_task(
    module: &Module,
    name_ptr: u32,
    name_len: u32,
    args_ptr: u32,
    args_len: u32,
) -> *mut u8 {
    install_hook();
    // SAFETY: forwarded contract: the host handed us these allocations.
    let (name, args) = unsafe {
        (
            abi::take_string(name_ptr, name_len),
            abi::take_args(args_ptr, args_len),
        )
    };
    let args = Args::new(args);
    let result = match module.tasks.iter().find(|t| t.name == name) {
        Some(task) => (task.run)(&args),
        None => Err(Error::with_code(
            Code::UnknownFunction,
            format!(
                "unknown task `{}` (this module has: {})",
                name,
                module
                    .tasks
                    .iter()
                    .map(|t| t.name)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
    };
    drop(args);
    flush_stdout();
    finish(|ret| abi::lower_result_output(ret, result))
}

/// Export `actor-init`.
///
/// # Safety
/// As for [`run_task`].
pub unsafe fn actor_init(
    module: &Module,
    class_ptr: u32,
    class_len: u32,
    args_ptr: u32,
    args_len: u32,
) -> *mut u8 {
    install_hook();
    // SAFETY: forwarded contract: the host handed us these allocations.
    let (class, args) = unsafe {
        (
            abi::take_string(class_ptr, class_len),
            abi::take_args(args_ptr, args_len),
        )
    };
    let args = Args::new(args);
    let result = init_actor(module, &class, &args);
    drop(args);
    flush_stdout();
    finish(|ret| abi::lower_result_unit(ret, result))
}

fn init_actor(module: &Module, class: &str, args: &Args) -> Result<()> {
    if ACTOR.with(|a| a.borrow().is_some()) {
        return Err(Error::new("this instance already holds an actor"));
    }
    let index = module
        .actors
        .iter()
        .position(|c| c.name == class)
        .ok_or_else(|| {
            Error::with_code(
                Code::UnknownFunction,
                format!(
                    "unknown actor class `{}` (this module has: {})",
                    class,
                    module
                        .actors
                        .iter()
                        .map(|c| c.name)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        })?;
    let state = (module.actors[index].create)(args)?;
    ACTOR.with(|a| *a.borrow_mut() = Some((index, state)));
    Ok(())
}

/// Export `actor-call`.
///
/// # Safety
/// As for [`run_task`].
pub unsafe fn actor_call(
    module: &Module,
    method_ptr: u32,
    method_len: u32,
    args_ptr: u32,
    args_len: u32,
) -> *mut u8 {
    install_hook();
    // SAFETY: forwarded contract: the host handed us these allocations.
    let (method, args) = unsafe {
        (
            abi::take_string(method_ptr, method_len),
            abi::take_args(args_ptr, args_len),
        )
    };
    let args = Args::new(args);
    let result = ACTOR.with(|slot| match slot.borrow_mut().as_mut() {
        None => Err(Error::new("actor-call before actor-init")),
        Some((index, actor)) => {
            let class = &module.actors[*index];
            if class.methods.iter().any(|m| *m == method) {
                actor.call_dyn(&method, &args)
            } else {
                Err(Error::with_code(
                    Code::UnknownFunction,
                    format!(
                        "actor class `{}` has no method `{}` (it has: {})",
                        class.name,
                        method,
                        class.methods.join(", ")
                    ),
                ))
            }
        }
    });
    drop(args);
    flush_stdout();
    finish(|ret| abi::lower_result_output(ret, result))
}

/// Every `cabi_post_*` export: frees what the last return area referenced.
pub fn post_return() {
    let keep = KEEP.with(|k| k.borrow_mut().take());
    drop(keep);
}

/// Export `_initialize`: runs the module's static constructors (as wasi-libc's
/// `crt1-reactor.o` does) and installs the panic hook.
pub fn initialize() {
    #[cfg(target_arch = "wasm32")]
    {
        extern "C" {
            /// Synthesized by the linker: runs every static constructor.
            fn __wasm_call_ctors();
        }
        // SAFETY: called once, first, by the component's start function; this is
        // exactly what the reactor entry point of wasi-libc does.
        unsafe { __wasm_call_ctors() };
    }
    install_hook();
}

/// Export `cabi_realloc`.
///
/// # Safety
/// Called by the host (or the WASI adapter) per the canonical ABI's `realloc` contract.
pub unsafe fn realloc(old_ptr: *mut u8, old_size: usize, align: usize, new_size: usize) -> *mut u8 {
    // SAFETY: forwarded contract.
    unsafe { abi::realloc(old_ptr, old_size, align, new_size) }
}

/// Exports tasks and actor classes as this module's `reef:runtime/guest` interface.
///
/// ```ignore
/// reef_guest::export_module! {
///     tasks: [add, sum_slice],
///     actors: [Accumulator],
/// }
/// ```
///
/// A task is a function `fn(&Args) -> Result<T>` where `T: Into<Output>` (e.g. `f64`,
/// `u64`, `String`, `()`, [`Value`](crate::Value), [`ObjectRef`](crate::ObjectRef) or
/// [`Output`]); it is exported under the function's name. An actor class is a type
/// implementing [`Actor`], exported under the type's name. `actors` may be omitted.
/// Use the macro once per crate (it also defines `cabi_realloc` and `_initialize`).
#[macro_export]
macro_rules! export_module {
    (tasks: [$($task:ident),* $(,)?] $(,)?) => {
        $crate::export_module! { tasks: [$($task),*], actors: [] }
    };
    (tasks: [$($task:ident),* $(,)?], actors: [$($actor:ident),* $(,)?] $(,)?) => {
        const _: () = {
            static __REEF_MODULE: $crate::export::Module = $crate::export::Module {
                tasks: &[$(
                    $crate::export::Task {
                        name: stringify!($task),
                        run: {
                            fn __reef_task(
                                args: &$crate::Args,
                            ) -> $crate::Result<$crate::Output> {
                                $crate::export::into_output($task(args))
                            }
                            __reef_task
                        },
                    }
                ),*],
                actors: &[$(
                    $crate::export::ActorClass {
                        name: stringify!($actor),
                        methods: <$actor as $crate::Actor>::METHODS,
                        create: $crate::export::create_actor::<$actor>,
                    }
                ),*],
            };

            #[export_name = "reef:runtime/guest@0.2.0#describe"]
            extern "C" fn __reef_describe() -> *mut u8 {
                $crate::export::describe(&__REEF_MODULE)
            }

            #[export_name = "cabi_post_reef:runtime/guest@0.2.0#describe"]
            extern "C" fn __reef_post_describe(_ret: *mut u8) {
                $crate::export::post_return()
            }

            // SAFETY (all `unsafe` exports below): only the host calls them, passing
            // strings and lists it allocated through `cabi_realloc`, per the canonical ABI.
            #[export_name = "reef:runtime/guest@0.2.0#run-task"]
            unsafe extern "C" fn __reef_run_task(
                name_ptr: u32,
                name_len: u32,
                args_ptr: u32,
                args_len: u32,
            ) -> *mut u8 {
                $crate::export::run_task(&__REEF_MODULE, name_ptr, name_len, args_ptr, args_len)
            }

            #[export_name = "cabi_post_reef:runtime/guest@0.2.0#run-task"]
            extern "C" fn __reef_post_run_task(_ret: *mut u8) {
                $crate::export::post_return()
            }

            #[export_name = "reef:runtime/guest@0.2.0#actor-init"]
            unsafe extern "C" fn __reef_actor_init(
                class_ptr: u32,
                class_len: u32,
                args_ptr: u32,
                args_len: u32,
            ) -> *mut u8 {
                $crate::export::actor_init(&__REEF_MODULE, class_ptr, class_len, args_ptr, args_len)
            }

            #[export_name = "cabi_post_reef:runtime/guest@0.2.0#actor-init"]
            extern "C" fn __reef_post_actor_init(_ret: *mut u8) {
                $crate::export::post_return()
            }

            #[export_name = "reef:runtime/guest@0.2.0#actor-call"]
            unsafe extern "C" fn __reef_actor_call(
                method_ptr: u32,
                method_len: u32,
                args_ptr: u32,
                args_len: u32,
            ) -> *mut u8 {
                $crate::export::actor_call(&__REEF_MODULE, method_ptr, method_len, args_ptr, args_len)
            }

            #[export_name = "cabi_post_reef:runtime/guest@0.2.0#actor-call"]
            extern "C" fn __reef_post_actor_call(_ret: *mut u8) {
                $crate::export::post_return()
            }

            /// Marks the module as a WASI reactor (no per-export ctor/dtor wrappers);
            /// `wit-component` runs it once when the component is instantiated.
            #[no_mangle]
            extern "C" fn _initialize() {
                $crate::export::initialize()
            }

            #[no_mangle]
            unsafe extern "C" fn cabi_realloc(
                old_ptr: *mut u8,
                old_size: usize,
                align: usize,
                new_size: usize,
            ) -> *mut u8 {
                $crate::export::realloc(old_ptr, old_size, align, new_size)
            }
        };
    };
}
