//! The per-instance state a guest's host calls work on (the `Store` data).

use crate::fastmap::FastSet;
use std::path::Path;

use tokio_util::sync::CancellationToken;
use wasmtime::component::Linker;
use wasmtime::ResourceLimiter;
use wasmtime_wasi::{FsPerms, ResourceTable, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use super::services::HostServices;
use super::views::Views;
use crate::grants::Grants;
use crate::logs::{LogSink, Stream};
use crate::scheduler::{Permit, Resources};
use crate::spec::Limits;
use crate::store::ObjectId;

/// Where a module granted `filesystem` sees its scratch directory.
pub const SCRATCH_GUEST_PATH: &str = "/scratch";

/// Links the WASI interfaces every guest gets (I/O streams, clocks, random,
/// stdio, exit, an empty environment, terminals) and those of the granted
/// capabilities only: `wasi:filesystem/*` with `filesystem`, `wasi:sockets/*`
/// with `network`. A component importing an interface that is not linked
/// cannot be instantiated.
pub fn add_wasi_to_linker(linker: &mut Linker<GuestCtx>, grants: Grants) -> anyhow::Result<()> {
    use wasmtime_wasi::cli::{WasiCli, WasiCliView};
    use wasmtime_wasi::filesystem::{WasiFilesystem, WasiFilesystemView};
    use wasmtime_wasi::p2::bindings::{cli, filesystem, random, sockets};
    use wasmtime_wasi::random::WasiRandom;
    use wasmtime_wasi::sockets::{WasiSockets, WasiSocketsView};

    // wasi:io, clocks, random/random, stdin, stdout, stderr.
    wasmtime_wasi::p2::add_to_linker_proxy_interfaces_async(linker)?;
    let l = linker;
    random::insecure::add_to_linker::<GuestCtx, WasiRandom>(l, |t| t.wasi.random())?;
    random::insecure_seed::add_to_linker::<GuestCtx, WasiRandom>(l, |t| t.wasi.random())?;
    cli::exit::add_to_linker::<GuestCtx, WasiCli>(l, GuestCtx::cli)?;
    cli::environment::add_to_linker::<GuestCtx, WasiCli>(l, GuestCtx::cli)?;
    cli::terminal_input::add_to_linker::<GuestCtx, WasiCli>(l, GuestCtx::cli)?;
    cli::terminal_output::add_to_linker::<GuestCtx, WasiCli>(l, GuestCtx::cli)?;
    cli::terminal_stdin::add_to_linker::<GuestCtx, WasiCli>(l, GuestCtx::cli)?;
    cli::terminal_stdout::add_to_linker::<GuestCtx, WasiCli>(l, GuestCtx::cli)?;
    cli::terminal_stderr::add_to_linker::<GuestCtx, WasiCli>(l, GuestCtx::cli)?;
    if grants.filesystem {
        filesystem::types::add_to_linker::<GuestCtx, WasiFilesystem>(l, GuestCtx::filesystem)?;
        filesystem::preopens::add_to_linker::<GuestCtx, WasiFilesystem>(l, GuestCtx::filesystem)?;
    }
    if grants.network {
        let options = sockets::network::LinkOptions::default();
        sockets::network::add_to_linker::<GuestCtx, WasiSockets>(l, &options, GuestCtx::sockets)?;
        sockets::instance_network::add_to_linker::<GuestCtx, WasiSockets>(l, GuestCtx::sockets)?;
        sockets::tcp::add_to_linker::<GuestCtx, WasiSockets>(l, GuestCtx::sockets)?;
        sockets::tcp_create_socket::add_to_linker::<GuestCtx, WasiSockets>(l, GuestCtx::sockets)?;
        sockets::udp::add_to_linker::<GuestCtx, WasiSockets>(l, GuestCtx::sockets)?;
        sockets::udp_create_socket::add_to_linker::<GuestCtx, WasiSockets>(l, GuestCtx::sockets)?;
        sockets::ip_name_lookup::add_to_linker::<GuestCtx, WasiSockets>(l, GuestCtx::sockets)?;
    }
    Ok(())
}

/// What an instance's context needs to know of its module.
pub struct ModuleFacts<'a> {
    pub hash: &'a str,
    pub grants: Grants,
    /// The directory preopened as `/scratch` (granted `filesystem`).
    pub scratch: Option<&'a Path>,
    /// Where the module's data segments end in linear memory.
    pub image_end: u64,
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
    /// What host calls may reach (see `services`).
    pub host: HostServices,
    /// The module's hash (`""` in `submit` names the calling module).
    pub module_hash: String,
    /// Views must stay above the module's data segments.
    pub image_end: u64,
    wasi: WasiCtx,
    table: ResourceTable,
    pub memory: MemoryLimiter,
    pub views: Views,
    /// Objects this guest may read: its arguments and what it created.
    pub allowed: FastSet<ObjectId>,
    /// References this guest holds (its puts and submissions), dropped at the end.
    pub owned: Vec<ObjectId>,
    pub panic_message: Option<String>,
    /// Where stdout, stderr and `log` lines go: the running call's log file.
    pub output: LogSink,
    pub ticks_used: u64,
    pub max_ticks: u64,
    pub cancel: CancellationToken,
    pub interrupted: Option<Interrupt>,
    /// CPU and other resources held while running; given back while the
    /// guest blocks on another task's result (as Ray does) so nested DAGs
    /// cannot deadlock the node.
    pub permit: Option<Permit>,
    pub resources: Resources,
    /// Where the guest's linear memory was (host address, bytes) when its
    /// last result was lifted: what `resident::merge_runs` works on.
    pub linear_memory: Option<(usize, usize)>,
}

impl GuestCtx {
    pub fn new(
        host: HostServices,
        module: ModuleFacts,
        limits: Limits,
        cancel: CancellationToken,
    ) -> Self {
        let output = LogSink::default();
        // Deny by default: no environment or arguments; a directory and the
        // network only when granted (the linker links them only then too).
        let mut wasi = WasiCtxBuilder::new();
        wasi.stdout(output.pipe(Stream::Stdout))
            .stderr(output.pipe(Stream::Stderr));
        let grants = module.grants;
        if grants.network {
            wasi.inherit_network()
                .allow_tcp(true)
                .allow_udp(true)
                .allow_ip_name_lookup(true);
        } else {
            wasi.allow_tcp(false)
                .allow_udp(false)
                .allow_ip_name_lookup(false);
        }
        if let Some(dir) = module.scratch {
            // The guest then sees no directory: its file calls fail, the task goes on.
            if let Err(e) = wasi.preopened_dir(dir, SCRATCH_GUEST_PATH, FsPerms::ReadWrite) {
                tracing::warn!(module = %module.hash, "cannot preopen {}: {e:#}", dir.display());
            }
        }
        let wasi = wasi.build();
        let tick_ms = crate::engine::EPOCH_TICK.as_millis() as u64;
        GuestCtx {
            host,
            module_hash: module.hash.to_string(),
            image_end: module.image_end,
            wasi,
            table: ResourceTable::new(),
            memory: MemoryLimiter {
                limit: limits.memory_bytes,
                hit: false,
            },
            views: Views::default(),
            allowed: FastSet::default(),
            owned: Vec::new(),
            panic_message: None,
            output,
            ticks_used: 0,
            max_ticks: limits.cpu_time_ms.div_ceil(tick_ms).max(1),
            cancel,
            interrupted: None,
            permit: None,
            resources: Resources::default(),
            linear_memory: None,
        }
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// Drops the references the guest held and undoes its views.
    pub fn finish(&mut self) {
        self.views.undo_all();
        for id in self.owned.drain(..) {
            self.host.objects().store().release(id);
        }
    }

    /// Whether the instance may serve another call after the one that just
    /// ended without an error (see `warm`): nothing stopped or denied it, it
    /// did not panic, and no view is mapped any more (`finish` ran).
    pub fn reusable(&self) -> bool {
        self.interrupted.is_none()
            && !self.memory.hit
            && self.panic_message.is_none()
            && self.views.is_empty()
            && self.owned.is_empty()
    }

    /// Ends a call of an instance kept for reuse (after `output.finish` and
    /// `finish`). What each field holds between two calls:
    ///
    /// - `host`: kept; replaced by the next call's in `begin_reuse` (the same
    ///   node and tenant: the tenant is part of the pool key).
    /// - `module_hash`, `image_end`: kept (the same module: part of the key).
    /// - `wasi`: kept. Its stdout and stderr write to `output`, which points
    ///   at no log between calls; no environment or arguments; the scratch
    ///   directory is the module's for this tenant (the same for every call).
    /// - `table`: kept: the WASI resources the guest holds (its stdio
    ///   streams), its own state like its globals.
    /// - `memory`: `limit` is the key's; `hit` is false (else not reused).
    /// - `views`: empty: `finish` undid every view still mapped, replacing
    ///   its pages with fresh zeroed ones, so the next call cannot see them.
    /// - `allowed`: cleared here; the next call's arguments in `begin_reuse`.
    /// - `owned`: released by `finish` (the guest's puts and submissions).
    /// - `panic_message`, `interrupted`: `None` (else not reused).
    /// - `output`: ended by `output.finish`; the next call's log in `begin_reuse`.
    /// - `ticks_used`: reset in `begin_reuse`; `max_ticks` is the key's.
    /// - `cancel`: the next call's token in `begin_reuse`.
    /// - `permit`, `resources`: dropped here, so an idle instance holds none
    ///   of the node's resources; the next call's in `begin_reuse`.
    ///
    /// The store's epoch deadline is re-armed by `exec::rearm`.
    pub fn end_call(&mut self) {
        self.allowed.clear();
        self.permit = None;
        self.resources = Resources::default();
        self.ticks_used = 0;
    }

    /// Prepares a kept instance for its next call (see `end_call`).
    pub fn begin_reuse(&mut self, host: HostServices, cancel: CancellationToken) {
        debug_assert_eq!(host.tenant(), self.host.tenant());
        self.host = host;
        self.cancel = cancel;
        self.ticks_used = 0;
        self.interrupted = None;
        self.panic_message = None;
        self.memory.hit = false;
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
