//! Per-call options: resources to reserve, guest limits and task retries.

use std::collections::BTreeMap;
use std::time::Duration;

use reef_proto as pb;

use reef_core::RetryPolicy;
pub use reef_core::{RetryExceptions, Strategy};

#[derive(Clone, Debug, Default)]
pub struct CallOptions {
    /// Where the call runs in a cluster.
    pub strategy: Strategy,
    /// CPUs to reserve (default 1 for tasks, 0 for actors).
    pub num_cpus: Option<f64>,
    /// Bytes of the node's `memory` resource to reserve.
    pub memory: u64,
    pub resources: BTreeMap<String, f64>,
    /// Guest linear-memory limit (default 256 MiB).
    pub memory_limit: Option<u64>,
    /// Guest CPU-time limit (default 60 s).
    pub cpu_time: Option<Duration>,
    /// Tasks only: how often a failed attempt is run again when its failure
    /// allows it (default 3, as in Ray; 0: never). A node failure (the node
    /// running it died or stopped, the host failed) always allows a retry.
    pub max_retries: Option<u32>,
    /// Tasks only: the guest failures that allow a retry too (default none).
    pub retry_exceptions: RetryExceptions,
    /// Tasks only: how many calls one wasm instance may serve, as Ray's
    /// `max_calls` (default 1: a fresh instance per task; 0: no limit). An
    /// instance that ran a task successfully is then kept on its node for
    /// the next task of the same module, tenant and limits, with its
    /// globals as the last call left them.
    pub max_calls: Option<u32>,
}

impl CallOptions {
    pub(crate) fn to_proto(&self) -> Option<pb::CallOptions> {
        let has_resources =
            self.num_cpus.is_some() || self.memory > 0 || !self.resources.is_empty();
        let mut options = pb::CallOptions {
            resources: has_resources.then(|| pb::Resources {
                num_cpus: self.num_cpus,
                memory: self.memory,
                custom: self.resources.clone().into_iter().collect(),
            }),
            memory_limit: self.memory_limit.unwrap_or(0),
            cpu_time_ms: self.cpu_time.map_or(0, |d| d.as_millis() as u64),
            max_calls: self.max_calls,
            ..Default::default()
        };
        RetryPolicy {
            max_retries: self.max_retries,
            exceptions: self.retry_exceptions.clone(),
        }
        .write_proto(&mut options);
        Some(options)
    }
}

/// A capability a module registration may grant (none by default). See
/// `docs/architecture.md#sandbox`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Grant {
    /// `wasi:filesystem`: the module sees a scratch directory of its own at
    /// `/scratch` on each node (kept across its tasks there, not replicated).
    Filesystem,
    /// `wasi:sockets`: TCP, UDP and name lookups to any address.
    Network,
}

impl Grant {
    pub fn as_str(self) -> &'static str {
        match self {
            Grant::Filesystem => "filesystem",
            Grant::Network => "network",
        }
    }
}

/// Options of a module registration.
#[derive(Clone, Debug, Default)]
pub struct ModuleOptions {
    /// Capabilities granted. A component importing an interface of a
    /// capability not granted is refused (`ErrorCode::NotGranted`). The same
    /// bytes registered with other grants are another module (another hash).
    pub grants: Vec<Grant>,
}

impl ModuleOptions {
    /// Adds a grant: `ModuleOptions::default().grant(Grant::Filesystem)`.
    pub fn grant(mut self, grant: Grant) -> Self {
        if !self.grants.contains(&grant) {
            self.grants.push(grant);
        }
        self
    }
}
