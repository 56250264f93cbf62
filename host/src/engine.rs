//! The one wasmtime `Engine` of a node: pooling allocator, copy-on-write
//! memory images, epoch interruption.

use std::num::NonZeroUsize;
use std::time::Duration;

use anyhow::Result;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, OptLevel, PoolingAllocationConfig};

/// How often the epoch advances: the granularity of CPU-time limits, and how
/// long a guest runs before it yields to its executor. A task's first slice
/// may run on the RPC thread (see `Tasks::run`), and tasks submitted together
/// are started one after the other there: with a 10 ms tick, four 3 ms tasks
/// ran in turn on that one thread while the guest threads stayed idle. At 1 ms
/// the ticker costs ~1,000 wake-ups a second and a guest a yield per ms.
pub const EPOCH_TICK: Duration = Duration::from_millis(1);
// CPU-time limits are counted in whole milliseconds of ticks.
const _: () = assert!(EPOCH_TICK.as_millis() >= 1);

/// Largest linear memory a guest may be allowed (the wasm32 maximum).
pub const MAX_MEMORY: u64 = 4 << 30;

/// Frames captured in a trap's backtrace.
pub const BACKTRACE_FRAMES: usize = 1000;

/// Bytes of a slot's linear memory its reset keeps resident (rewritten from
/// the image instead of given back with `madvise`), when `PAGEMAP_SCAN` finds
/// which pages were written (see `new_engine`, `guest::resident`). CPython's
/// noop writes pages that take 2-3 MiB once their gaps are filled: at 1 or
/// 2 MiB every fresh Python instance faulted them in again (~1.45 ms round
/// trip), from 3 MiB on it does not (~0.7 ms). A slot keeps at most this
/// much after its instance ends, and only pages that instance wrote (or
/// that `merge_runs` filled between them).
pub const KEEP_RESIDENT: usize = 4 << 20;

/// Concurrent instances (running tasks plus live actors) the pool holds.
pub const POOL_INSTANCES: u32 = 1000;

pub fn new_engine() -> Result<Engine> {
    let mut pool = PoolingAllocationConfig::new();
    pool.total_component_instances(POOL_INSTANCES)
        .total_core_instances(POOL_INSTANCES * 8)
        .max_core_instances_per_component(64)
        .total_memories(POOL_INSTANCES * 2)
        .max_memories_per_component(2)
        .max_memories_per_module(1)
        .total_tables(POOL_INSTANCES * 8)
        .max_tables_per_component(16)
        .total_stacks(POOL_INSTANCES)
        .max_memory_size(MAX_MEMORY as usize)
        .max_component_instance_size(1 << 20)
        .max_core_instance_size(1 << 20)
        .table_elements(100_000)
        // Reset slot memory by memset for small dirty regions (faster than madvise).
        .linear_memory_keep_resident(64 << 10);
    // With PAGEMAP_SCAN (Linux 6.7+) a slot is reset by rewriting only the
    // pages its instance dirtied, up to these sizes, instead of madvise: the
    // pages stay resident, so the next instance takes no page faults and no
    // TLB-shootdown IPIs (instantiate + drop: ~40 µs -> ~12 µs here).
    if PoolingAllocationConfig::is_pagemap_scan_available() {
        pool.pagemap_scan(wasmtime::Enabled::Yes)
            .linear_memory_keep_resident(KEEP_RESIDENT)
            .table_keep_resident(1 << 20);
    }

    let mut config = Config::new();
    config
        .wasm_component_model(true)
        .epoch_interruption(true)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool))
        .memory_init_cow(true)
        // Views are mmapped at fixed addresses in linear memory: it must never move.
        .memory_may_move(false)
        .memory_reservation(MAX_MEMORY)
        .memory_guard_size(64 << 20)
        .max_wasm_stack(1 << 20)
        .async_stack_size(2 << 20)
        .cranelift_opt_level(OptLevel::Speed)
        // Deep enough to recognise a runaway recursion (see `exec::classify`).
        .wasm_backtrace_max_frames(NonZeroUsize::new(BACKTRACE_FRAMES))
        .parallel_compilation(true);
    // For profiling guests: wasmtime writes /tmp/perf-<pid>.map, and `perf
    // report` names the guests' functions (docs/architecture.md).
    if std::env::var_os("REEF_PERFMAP").is_some_and(|v| v == "1") {
        config.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }
    Engine::new(&config).map_err(anyhow::Error::from)
}

/// Advances the engine's epoch every `EPOCH_TICK` on a thread of its own.
pub fn start_epoch_ticker(engine: &Engine) {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("reef-epoch".into())
        .spawn(move || loop {
            std::thread::sleep(EPOCH_TICK);
            match weak.upgrade() {
                Some(engine) => engine.increment_epoch(),
                None => return,
            }
        })
        .expect("spawning the epoch thread");
}
