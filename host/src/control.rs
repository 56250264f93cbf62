//! What a node records in the control plane: module bytes (over RPC, from
//! every node), and — on the head, in process — driver jobs. Actors are in
//! `cluster::actors`.
//! Membership and heartbeats are in `cluster`.

use reef_proto as pb;

use crate::modules::Module;
use crate::node::Node;

/// Logs a failed control-plane write: the node goes on serving.
fn logged<T>(what: &str, result: reef_gcs::Result<T>) -> Option<T> {
    result
        .map_err(|e| tracing::warn!("control plane: {what}: {e}"))
        .ok()
}

impl Node {
    /// Uploads a module's bytes to the control plane, so other nodes can
    /// fetch it by hash the first time they run it. Registration waits for
    /// it: a task forwarded right after must find the module there.
    pub async fn publish_module(&self, module: &Module, wasm: bytes::Bytes) {
        let Ok(mut gcs) = self.cluster.gcs() else {
            return;
        };
        let hash = module.hash.clone();
        let request = pb::PutModuleRequest {
            hash: hash.clone(),
            wasm,
        };
        if let Err(status) = gcs.put_module(request).await {
            tracing::warn!("control plane: uploading module {hash}: {status}");
        }
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
}
