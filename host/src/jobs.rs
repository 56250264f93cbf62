//! Driver sessions as jobs: every session, on every node, is recorded in the
//! control plane with the driver's address and its start and end times.
//!
//! Recording happens in the background: a session never waits for the
//! control plane, and the times are the session's own, whenever the calls
//! land. Without a control plane (a node running alone) nothing is recorded.

use std::sync::{Arc, Mutex};

use reef_gcs::ControlPlane;
use reef_proto as pb;
use tokio::task::JoinHandle;

/// A driver session's job.
pub struct Job {
    control_plane: Option<Arc<dyn ControlPlane>>,
    /// The recording call, answering the job's id (`None`: not recorded,
    /// or already ended).
    started: Mutex<Option<JoinHandle<Option<u64>>>>,
}

impl Job {
    /// Records a session of the driver at `driver_address`, on node
    /// `node_id`, starting now; `submission_id`: the submitted job whose
    /// process the driver is ("" for none); `tenant`: whose session it is
    /// (as on the wire). Must be called on the runtime.
    pub fn start(
        control_plane: Option<Arc<dyn ControlPlane>>,
        node_id: &str,
        driver_address: String,
        description: String,
        submission_id: String,
        tenant: String,
    ) -> Job {
        let started = control_plane.clone().map(|control_plane| {
            let request = pb::StartJobRequest {
                driver_address,
                description,
                node_id: node_id.to_string(),
                started_at_ms: reef_gcs::now_millis(),
                submission_id,
                tenant,
            };
            tokio::spawn(async move {
                control_plane
                    .start_job(request)
                    .await
                    .map_err(|status| tracing::warn!("control plane: starting a job: {status}"))
                    .ok()
            })
        });
        Job {
            control_plane,
            started: Mutex::new(started),
        }
    }

    /// The session ended now; recorded once its start is. Must be called on
    /// the runtime; a second call does nothing.
    pub fn end(&self) {
        let started = self.started.lock().unwrap().take();
        let (Some(started), Some(control_plane)) = (started, self.control_plane.clone()) else {
            return;
        };
        let ended_at_ms = reef_gcs::now_millis();
        tokio::spawn(async move {
            let Ok(Some(job_id)) = started.await else {
                return;
            };
            if let Err(status) = control_plane.end_job(job_id, ended_at_ms).await {
                tracing::warn!("control plane: ending job {job_id}: {status}");
            }
        });
    }
}
