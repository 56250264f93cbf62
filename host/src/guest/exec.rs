//! Running guest code: building a store with its limits, calling an export,
//! turning what comes back (or the trap) into an object or a typed error.

use std::sync::Arc;

use wasmtime::component::{ComponentExportIndex, Instance};
use wasmtime::{Store, Trap, UpdateDeadline, WasmBacktrace};

use super::ctx::{GuestCtx, Interrupt, ModuleFacts};
use super::resident::WithMemory;
use super::services::HostServices;
use super::types::{Arg, Failure, Output};
use crate::error::{ErrorCode, ReefError, ReefResult};
use crate::module::Module;
use crate::spec::Limits;
use crate::store::Data;
use tokio_util::sync::CancellationToken;

/// A store for one task or actor, with memory and CPU-time limits armed.
pub fn new_store(
    host: &HostServices,
    module: &Module,
    limits: Limits,
    cancel: CancellationToken,
) -> Store<GuestCtx> {
    // Each tenant running the module has its own scratch directory.
    let scratch = module.scratch.as_ref().and_then(|dir| {
        let dir = dir.join(host.tenant().to_string());
        match std::fs::create_dir_all(&dir) {
            Ok(()) => Some(dir),
            Err(e) => {
                // The guest then sees no directory: its file calls fail.
                tracing::warn!("creating scratch dir {}: {e}", dir.display());
                None
            }
        }
    });
    let facts = ModuleFacts {
        hash: &module.hash,
        grants: module.grants,
        scratch: scratch.as_deref(),
        image_end: module.image_end,
    };
    let ctx = GuestCtx::new(host.clone(), facts, limits, cancel);
    let mut store = Store::new(host.engine(), ctx);
    store.limiter(|ctx| &mut ctx.memory);
    // Check limits at every epoch tick; yield to the executor between
    // checks so a long-running guest never starves the node's other work.
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(|mut cx| {
        let ctx = cx.data_mut();
        if ctx.is_cancelled() {
            ctx.interrupted = Some(Interrupt::Cancelled);
            return Err(Interrupt::Cancelled.into());
        }
        ctx.ticks_used += 1;
        if ctx.ticks_used > ctx.max_ticks {
            ctx.interrupted = Some(Interrupt::CpuTime);
            return Err(Interrupt::CpuTime.into());
        }
        Ok(UpdateDeadline::Yield(1))
    });
    // Lifting a view's buffer costs fuel per byte; views may be GiBs.
    store.set_hostcall_fuel(usize::MAX);
    store
}

/// Re-arms the epoch deadline of a store kept for another call (`warm`):
/// the previous call's last yield left it at an arbitrary count.
pub fn rearm(store: &mut Store<GuestCtx>) {
    store.set_epoch_deadline(1);
}

pub async fn instantiate(store: &mut Store<GuestCtx>, module: &Module) -> ReefResult<Instance> {
    module
        .pre
        .instantiate_async(&mut *store)
        .await
        .map_err(|e| classify(e, store.data()))
}

/// Calls an export that returns `result<output, failure>` and stores its output.
pub async fn call_output(
    store: &mut Store<GuestCtx>,
    instance: &Instance,
    export: &ComponentExportIndex,
    name: &str,
    args: &[Arg],
) -> ReefResult<Arc<Data>> {
    let func = instance
        .get_typed_func::<(&str, &[Arg]), (WithMemory<Result<Output, Failure>>,)>(
            &mut *store,
            export,
        )
        .map_err(|e| ReefError::new(ErrorCode::InvalidModule, format!("{e:#}")))?;
    let (out,) = func
        .call_async(&mut *store, (name, args))
        .await
        .map_err(|e| classify(e, store.data()))?;
    store.data_mut().linear_memory = Some(out.memory);
    let out = out.value;
    let objects = store.data().host.objects().clone();
    match out {
        Ok(Output::Bytes(bytes)) => objects.store().new_data(&bytes),
        Ok(Output::Object(id)) => {
            if !store.data().allowed.contains(&id) {
                return Err(ReefError::new(
                    ErrorCode::UnknownObject,
                    format!("the guest returned object {id:#x}, which it was not given"),
                ));
            }
            objects.fetch(id).await
        }
        Err(failure) => Err(failure.into()),
    }
}

/// Calls `actor-init`, which returns `result<_, failure>`.
pub async fn call_init(
    store: &mut Store<GuestCtx>,
    instance: &Instance,
    export: &ComponentExportIndex,
    class: &str,
    args: &[Arg],
) -> ReefResult<()> {
    let func = instance
        .get_typed_func::<(&str, &[Arg]), (Result<(), Failure>,)>(&mut *store, export)
        .map_err(|e| ReefError::new(ErrorCode::InvalidModule, format!("{e:#}")))?;
    let (out,) = func
        .call_async(&mut *store, (class, args))
        .await
        .map_err(|e| classify(e, store.data()))?;
    out.map_err(ReefError::from)
}

/// Names the cause of a failed guest call.
pub fn classify(err: wasmtime::Error, ctx: &GuestCtx) -> ReefError {
    let frames = err
        .downcast_ref::<WasmBacktrace>()
        .map_or(0, |bt| bt.frames().len());
    let backtrace = err
        .downcast_ref::<WasmBacktrace>()
        .map(short_backtrace)
        .unwrap_or_default();
    let error = match ctx.interrupted {
        Some(Interrupt::Cancelled) => {
            ReefError::new(ErrorCode::Cancelled, "the task was cancelled while running")
        }
        Some(Interrupt::CpuTime) => ReefError::new(
            ErrorCode::CpuTimeLimit,
            format!(
                "the guest exceeded its CPU-time limit of {} ms",
                ctx.max_ticks * crate::engine::EPOCH_TICK.as_millis() as u64
            ),
        ),
        None if ctx.memory.hit => ReefError::new(
            ErrorCode::MemoryLimit,
            format!(
                "the guest exceeded its memory limit of {} bytes ({err})",
                ctx.memory.limit
            ),
        ),
        None => match err.downcast_ref::<Trap>() {
            Some(Trap::StackOverflow) => {
                ReefError::new(ErrorCode::StackOverflow, "the guest overflowed its stack")
            }
            // Languages with a shadow stack in linear memory (Rust, C) run off
            // its end into an out-of-bounds access, deep in a recursion.
            Some(Trap::MemoryOutOfBounds) if frames >= RUNAWAY_RECURSION_FRAMES => ReefError::new(
                ErrorCode::StackOverflow,
                format!("the guest overflowed its stack ({frames}+ frames deep, then {err})"),
            ),
            Some(trap) => match &ctx.panic_message {
                Some(panic) => ReefError::new(ErrorCode::GuestPanic, panic.clone()),
                None => ReefError::new(ErrorCode::GuestTrap, format!("wasm trap: {trap}")),
            },
            None => match &ctx.panic_message {
                Some(panic) => ReefError::new(ErrorCode::GuestPanic, panic.clone()),
                None => ReefError::new(ErrorCode::GuestTrap, format!("{err:#}")),
            },
        },
    };
    error.with_backtrace(backtrace)
}

/// A call stack this deep that ends in an out-of-bounds access is a stack overflow.
const RUNAWAY_RECURSION_FRAMES: usize = 500;

/// The innermost frames of a backtrace, and how many were left out.
fn short_backtrace(bt: &WasmBacktrace) -> String {
    const SHOWN: usize = 30;
    let text = bt.to_string();
    let lines: Vec<&str> = text.lines().collect();
    let frames = bt.frames().len();
    if frames <= SHOWN {
        return text;
    }
    // Each frame prints as one or more lines starting with its index.
    let cut = lines
        .iter()
        .position(|l| l.trim_start().starts_with(&format!("{SHOWN}:")))
        .unwrap_or(lines.len());
    format!(
        "{}\n    ... {} more frames",
        lines[..cut].join("\n"),
        frames - SHOWN
    )
}
