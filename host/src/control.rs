//! What a head node records in its control plane (`reef-gcs`): itself and
//! its heartbeats, registered modules, driver jobs and the actor directory.
//!
//! Nodes without `--head` have no control plane yet (issue 3 connects them
//! to the head's); every function here is then a no-op.

use std::sync::Arc;
use std::time::Duration;

use reef_gcs::{ActorRecord, ActorState, ModuleRecord, NodeInfo};

use crate::error::{ErrorCode, ReefError, ReefResult};
use crate::modules::Module;
use crate::node::Node;
use crate::scheduler::Resources;

const HEARTBEAT: Duration = Duration::from_secs(1);

fn resource_map(r: &Resources) -> reef_gcs::Resources {
    r.rows().into_iter().collect()
}

/// Logs a failed control-plane write: the node goes on serving.
fn logged<T>(what: &str, result: reef_gcs::Result<T>) -> Option<T> {
    result
        .map_err(|e| tracing::warn!("control plane: {what}: {e}"))
        .ok()
}

impl Node {
    /// Registers this node, forgets what a previous run left alive, and
    /// starts the heartbeat.
    pub fn join_control_plane(self: &Arc<Self>) {
        let Some(gcs) = &self.gcs else { return };
        // Actors and nodes of an earlier run of this head are gone.
        for actor in logged("listing actors", gcs.actors()).unwrap_or_default() {
            if actor.is_live() {
                let dead = ActorState::Dead {
                    reason: "the head node restarted".into(),
                };
                logged(
                    "ending a stale actor",
                    gcs.set_actor_state(actor.actor_id, dead),
                );
            }
        }
        for node in logged("listing nodes", gcs.alive_nodes()).unwrap_or_default() {
            logged("ending a stale node", gcs.mark_dead(&node.node_id));
        }
        let info = NodeInfo::new(
            &self.id,
            format!("127.0.0.1:{}", self.config.port),
            resource_map(self.scheduler.total()),
        );
        logged("registering this node", gcs.register_node(info));
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(HEARTBEAT).await;
                let Some(node) = weak.upgrade() else { return };
                if node.is_stopping() {
                    return;
                }
                if let Some(gcs) = &node.gcs {
                    let available = resource_map(&node.scheduler.available());
                    logged("heartbeat", gcs.heartbeat(&node.id, available));
                }
            }
        });
    }

    pub fn record_module(&self, module: &Module) {
        let Some(gcs) = &self.gcs else { return };
        let record = ModuleRecord {
            hash: module.hash.clone(),
            size_bytes: module.size,
            sdk: module.info.sdk.clone(),
            tasks: module.info.tasks.clone(),
            actors: module
                .info
                .actors
                .iter()
                .map(|a| reef_gcs::ActorClassInfo {
                    name: a.name.clone(),
                    methods: a.methods.clone(),
                })
                .collect(),
            registered_at_ms: reef_gcs::now_millis(),
        };
        logged("recording a module", gcs.register_module(record));
    }

    /// A driver session is a job; returns its id (0 without a control plane).
    pub fn start_job(&self, description: &str) -> u64 {
        let Some(gcs) = &self.gcs else { return 0 };
        logged("starting a job", gcs.start_job("127.0.0.1", description)).unwrap_or(0)
    }

    pub fn end_job(&self, job_id: u64) {
        if let (Some(gcs), true) = (&self.gcs, job_id > 0) {
            logged("ending a job", gcs.end_job(job_id));
        }
    }

    /// Records a new actor; claims its name cluster-wide when it has one.
    pub fn record_actor(
        &self,
        id: u64,
        module: &str,
        class: &str,
        name: Option<&str>,
    ) -> ReefResult<()> {
        let Some(gcs) = &self.gcs else { return Ok(()) };
        let mut record = ActorRecord::new(id, module, class, 0);
        record.node_id = Some(self.id.clone());
        record.name = name.map(str::to_string);
        match gcs.register_actor(record) {
            Err(reef_gcs::GcsError::NameTaken { name, .. }) => Err(ReefError::new(
                ErrorCode::NameTaken,
                format!("an actor named `{name}` already exists"),
            )),
            other => {
                logged("recording an actor", other);
                Ok(())
            }
        }
    }

    pub fn record_actor_state(&self, id: u64, state: ActorState) {
        if let Some(gcs) = &self.gcs {
            logged("updating an actor", gcs.set_actor_state(id, state));
        }
    }
}
