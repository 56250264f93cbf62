//! What a node is started with (`host start` flags, or tests' own values).

use std::path::PathBuf;

use crate::error::{ErrorCode, ReefError, ReefResult};
use crate::spec::{CallOptions, Limits};

#[derive(Clone, Debug)]
pub struct NodeConfig {
    pub head: bool,
    pub port: u16,
    pub num_cpus: f64,
    /// Bytes of the `memory` resource tasks can reserve.
    pub memory: u64,
    pub custom_resources: std::collections::BTreeMap<String, f64>,
    pub object_store_memory: u64,
    pub spill_dir: PathBuf,
    pub data_dir: PathBuf,
    /// The Unix socket same-machine drivers use (see `Hello.socket_path`).
    pub socket_path: PathBuf,
    /// Objects below this size live on the heap rather than in the arena.
    pub inline_threshold: u64,
    pub default_memory_limit: u64,
    pub default_cpu_time_ms: u64,
    /// The largest memory limit a call may ask for (`--max-call-memory`, at
    /// most `engine::MAX_MEMORY`); a call asking more fails at once.
    pub max_call_memory: u64,
    /// Bytes the spill directory may hold (`--max-spill-bytes`).
    pub max_spill_bytes: u64,
    /// The cluster token: checked on every RPC this node serves, presented on
    /// every RPC it makes to other nodes and the control plane.
    pub token: String,
    /// The head's address when this node joins a cluster (`--address`); a
    /// head joins its own control plane.
    pub head_address: Option<String>,
    /// The host other nodes reach this one at (`--node-ip`).
    pub advertise_host: String,
    /// Bounds of guests' log files (`--log-call-bytes`, `--log-dir-bytes`).
    pub log_limits: crate::logs::LogLimits,
    /// What the node keeps to rebuild lost results (see `lineage`).
    pub lineage: LineageLimits,
    /// Whether the node counts metrics (`--no-metrics` turns them off).
    pub metrics: bool,
    /// Driver sessions one tenant may have open on this node at once
    /// (`--max-sessions-per-tenant`; the admin's are not counted).
    pub max_sessions_per_tenant: usize,
    /// Idle task instances kept for reuse by tasks with `max_calls != 1`,
    /// across all modules and tenants (`--warm-instances`; 0: none kept).
    pub warm_instances: usize,
    /// A module whose instances take at least this much CPU time to make
    /// has the next fresh one made ahead of time (`--prestart-min-us`; see
    /// `guest::warm`); `None`: never.
    pub prestart_min: Option<std::time::Duration>,
    /// Added to the guest threads' nice value while tenants compete for the
    /// node (`--guest-niceness`; see `runtime::GuestRuntime`).
    pub guest_niceness: i32,
}

/// Lineage kept by a node (`--no-lineage`, `--lineage-bytes`).
#[derive(Clone, Copy, Debug)]
pub struct LineageLimits {
    pub enabled: bool,
    /// Bytes of all entries together; the oldest are evicted beyond it.
    pub max_bytes: u64,
}

impl Default for LineageLimits {
    fn default() -> Self {
        LineageLimits {
            enabled: true,
            max_bytes: 128 << 20,
        }
    }
}

impl NodeConfig {
    /// A node for tests and benchmarks run inside one process: not a head,
    /// no port, no token, everything it writes under `dir` (its arena in
    /// `/dev/shm`), an `object_store`-byte arena, and resources ample enough
    /// that no test or figure waits for them (16 CPUs, 16 GiB). Change
    /// fields for more.
    pub fn for_tests(dir: &std::path::Path, object_store: u64) -> NodeConfig {
        NodeConfig {
            head: false,
            port: 0,
            num_cpus: 16.0,
            memory: 16 << 30,
            custom_resources: Default::default(),
            object_store_memory: object_store,
            spill_dir: dir.join("spill"),
            data_dir: dir.to_owned(),
            socket_path: dir.join("node.sock"),
            inline_threshold: 100 << 10,
            default_memory_limit: 256 << 20,
            default_cpu_time_ms: 60_000,
            max_call_memory: crate::engine::MAX_MEMORY,
            max_spill_bytes: u64::MAX,
            token: String::new(),
            head_address: None,
            advertise_host: "127.0.0.1".into(),
            log_limits: Default::default(),
            lineage: Default::default(),
            metrics: true,
            max_sessions_per_tenant: MAX_SESSIONS_PER_TENANT,
            warm_instances: 8,
            prestart_min: Some(PRESTART_MIN),
            guest_niceness: GUEST_NICENESS,
        }
    }

    /// The address other nodes and drivers reach this node at.
    pub fn address(&self) -> String {
        format!("{}:{}", self.advertise_host, self.port)
    }

    /// Checks a new call's asks against the node's limits: a memory limit
    /// above `--max-call-memory` can never be granted here (`INFEASIBLE`).
    pub fn check_call(&self, options: &CallOptions, what: &str) -> ReefResult<()> {
        if let Some(r) = &options.resources {
            let amounts = std::iter::once(("CPU", r.cpus))
                .chain(r.custom.iter().map(|(name, v)| (name.as_str(), *v)));
            for (name, amount) in amounts {
                if !amount.is_finite() || amount < 0.0 {
                    return Err(ReefError::new(
                        ErrorCode::BadArgument,
                        format!(
                            "{what} asks for {amount} of resource `{name}`: an amount must be \
                             finite and non-negative"
                        ),
                    ));
                }
            }
        }
        match options.memory_limit {
            Some(asked) if asked > self.max_call_memory => Err(ReefError::new(
                ErrorCode::Infeasible,
                format!(
                    "{what} asks for a memory limit of {asked} bytes, above this node's \
                     --max-call-memory of {} bytes",
                    self.max_call_memory
                ),
            )),
            _ => Ok(()),
        }
    }

    /// What a call asking for no limits gets (before a tenant's quotas).
    pub fn call_defaults(&self) -> crate::quotas::NodeDefaults {
        crate::quotas::NodeDefaults {
            memory_limit: self.default_memory_limit,
            cpu_time_ms: self.default_cpu_time_ms,
        }
    }

    /// The limits of one call: its own, else the node's defaults.
    pub fn limits(&self, options: &CallOptions) -> Limits {
        Limits {
            memory_bytes: options
                .memory_limit
                .unwrap_or(self.default_memory_limit)
                .min(crate::engine::MAX_MEMORY),
            cpu_time_ms: options.cpu_time_ms.unwrap_or(self.default_cpu_time_ms),
        }
    }
}

/// The default of `NodeConfig::max_sessions_per_tenant`: an eighth of a
/// node's session slots (`ids::SLOTS`), so that one tenant opening sessions
/// cannot take them all.
pub const MAX_SESSIONS_PER_TENANT: usize = (crate::ids::SLOTS / 8) as usize;

/// The default of `NodeConfig::prestart_min`: the Rust and JS demo guests
/// make an instance in 7 and 24 µs (not worth a hand-off to another
/// thread), CPython's in ~600 µs. Each module is judged by its own measured
/// time.
pub const PRESTART_MIN: std::time::Duration = std::time::Duration::from_micros(100);

/// The default of `--guest-niceness`, added to the guest threads' nice
/// value while tenants compete. Measured (`bench isolation`, alternated):
/// tenant A's p99 under B's flood at 5 a median of ~0.38-0.48 ms against
/// ~0.5-0.62 ms at 0; 10, 15 and 19 were no better.
pub const GUEST_NICENESS: i32 = 5;
