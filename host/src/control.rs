//! What a node records in the control plane: module bytes, and one job per
//! driver session. Actors are in `cluster::actors`; membership and
//! heartbeats in `cluster`. Every call goes through the node's one
//! control-plane client (`Membership::gcs`).

use std::sync::Mutex;

use reef_proto as pb;
use tokio::task::JoinHandle;

use crate::modules::Module;
use crate::node::Node;

/// A driver session's job. It is recorded in the background: a session
/// never waits for the control plane, and its start and end times are the
/// session's own, whenever the calls land.
pub struct Job {
    /// The recording call, answering the job's id (`None`: not recorded).
    started: Mutex<Option<JoinHandle<Option<u64>>>>,
}

impl Node {
    /// Uploads a module's bytes to the control plane, so other nodes can
    /// fetch it by hash the first time they run it. Registration waits for
    /// it: a task forwarded right after must find the module there.
    pub async fn publish_module(&self, module: &Module, wasm: bytes::Bytes) {
        let Ok(gcs) = self.cluster.gcs() else {
            return;
        };
        if let Err(status) = gcs.put_module(&module.hash, wasm).await {
            tracing::warn!("control plane: uploading module {}: {status}", module.hash);
        }
    }

    /// Records a driver session, connected from `driver_address`, as a job
    /// (nothing without a control plane). Must be called on the runtime.
    pub fn start_job(&self, driver_address: String, description: String) -> Job {
        let Ok(gcs) = self.cluster.gcs() else {
            return Job {
                started: Mutex::new(None),
            };
        };
        let request = pb::StartJobRequest {
            driver_address,
            description,
            node_id: self.id.clone(),
            started_at_ms: reef_gcs::now_millis(),
        };
        let started = tokio::spawn(async move {
            gcs.start_job(request)
                .await
                .map_err(|status| tracing::warn!("control plane: starting a job: {status}"))
                .ok()
        });
        Job {
            started: Mutex::new(Some(started)),
        }
    }

    /// The session of `job` ended now (once it is recorded). Must be called
    /// on the runtime.
    pub fn end_job(&self, job: &Job) {
        let started = job.started.lock().unwrap().take();
        let (Some(started), Ok(gcs)) = (started, self.cluster.gcs()) else {
            return;
        };
        let ended_at_ms = reef_gcs::now_millis();
        tokio::spawn(async move {
            let Ok(Some(job_id)) = started.await else {
                return;
            };
            if let Err(status) = gcs.end_job(job_id, ended_at_ms).await {
                tracing::warn!("control plane: ending job {job_id}: {status}");
            }
        });
    }
}
