//! The per-instance state a guest's host calls work on (the `Store` data).

use std::collections::HashSet;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use wasmtime::ResourceLimiter;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{ResourceTable, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use super::views::Views;
use crate::modules::Module;
use crate::node::Node;
use crate::scheduler::{Permit, Resources};
use crate::store::ObjectId;

/// Captured stdout/stderr per instance (a guest writing past it traps).
const OUTPUT_CAPACITY: usize = 4 << 20;

/// Limits of one task or actor.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub memory_bytes: u64,
    pub cpu_time_ms: u64,
}

/// Why a running guest was stopped from the epoch callback.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interrupt {
    CpuTime,
    Cancelled,
}

impl std::fmt::Display for Interrupt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Interrupt::CpuTime => write!(f, "CPU-time limit exceeded"),
            Interrupt::Cancelled => write!(f, "cancelled"),
        }
    }
}
impl std::error::Error for Interrupt {}

pub struct GuestCtx {
    pub node: Arc<Node>,
    pub module: Arc<Module>,
    wasi: WasiCtx,
    table: ResourceTable,
    pub memory: MemoryLimiter,
    pub views: Views,
    /// Objects this guest may read: its arguments and what it created.
    pub allowed: HashSet<ObjectId>,
    /// References this guest holds (its puts and submissions), dropped at the end.
    pub owned: Vec<ObjectId>,
    pub panic_message: Option<String>,
    pub log: Vec<String>,
    pub stdout: MemoryOutputPipe,
    pub stderr: MemoryOutputPipe,
    pub ticks_used: u64,
    pub max_ticks: u64,
    pub cancel: CancellationToken,
    pub interrupted: Option<Interrupt>,
    /// CPU and other resources held while running; given back while the
    /// guest blocks on another task's result (as Ray does) so nested DAGs
    /// cannot deadlock the node.
    pub permit: Option<Permit>,
    pub resources: Resources,
}

impl GuestCtx {
    pub fn new(
        node: Arc<Node>,
        module: Arc<Module>,
        limits: Limits,
        cancel: CancellationToken,
    ) -> Self {
        let stdout = MemoryOutputPipe::new(OUTPUT_CAPACITY);
        let stderr = MemoryOutputPipe::new(OUTPUT_CAPACITY);
        // Deny by default: no preopened directories, arguments or sockets; the
        // environment holds only the node's id (as Ray's runtime context does).
        let wasi = WasiCtxBuilder::new()
            .env("REEF_NODE_ID", &node.id)
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        let tick_ms = crate::engine::EPOCH_TICK.as_millis() as u64;
        GuestCtx {
            node,
            module,
            wasi,
            table: ResourceTable::new(),
            memory: MemoryLimiter {
                limit: limits.memory_bytes,
                hit: false,
            },
            views: Views::default(),
            allowed: HashSet::new(),
            owned: Vec::new(),
            panic_message: None,
            log: Vec::new(),
            stdout,
            stderr,
            ticks_used: 0,
            max_ticks: limits.cpu_time_ms.div_ceil(tick_ms).max(1),
            cancel,
            interrupted: None,
            permit: None,
            resources: Resources::default(),
        }
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// Drops the references the guest held and undoes its views.
    pub fn finish(&mut self) {
        self.views.undo_all();
        for id in self.owned.drain(..) {
            self.node.store.release(id);
        }
    }
}

impl Drop for GuestCtx {
    fn drop(&mut self) {
        self.finish();
    }
}

impl WasiView for GuestCtx {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Enforces the per-call memory limit and remembers a denial, so the
/// failure is reported as MEMORY_LIMIT rather than as the trap that follows.
pub struct MemoryLimiter {
    pub limit: u64,
    pub hit: bool,
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired as u64 > self.limit {
            self.hit = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 1 << 20)
    }
}
