//! Per-call options: resources to reserve and guest limits.

use std::collections::BTreeMap;
use std::time::Duration;

use reef_proto as pb;

#[derive(Clone, Debug, Default)]
pub struct CallOptions {
    /// CPUs to reserve (default 1 for tasks, 0 for actors).
    pub num_cpus: Option<f64>,
    /// Bytes of the node's `memory` resource to reserve.
    pub memory: u64,
    pub resources: BTreeMap<String, f64>,
    /// Guest linear-memory limit (default 256 MiB).
    pub memory_limit: Option<u64>,
    /// Guest CPU-time limit (default 60 s).
    pub cpu_time: Option<Duration>,
}

impl CallOptions {
    pub(crate) fn to_proto(&self) -> Option<pb::CallOptions> {
        let has_resources =
            self.num_cpus.is_some() || self.memory > 0 || !self.resources.is_empty();
        Some(pb::CallOptions {
            resources: has_resources.then(|| pb::Resources {
                num_cpus: self.num_cpus,
                memory: self.memory,
                custom: self.resources.clone().into_iter().collect(),
            }),
            memory_limit: self.memory_limit.unwrap_or(0),
            cpu_time_ms: self.cpu_time.map_or(0, |d| d.as_millis() as u64),
        })
    }
}
