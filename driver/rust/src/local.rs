//! A private node for `Cluster::local`: a child `host start` process on a
//! free port with its own data directory, stopped when the cluster is dropped.
//!
//! Starting and stopping the process is `reef-launcher`'s job, the crate the
//! integration tests and the benches start their nodes with too (it lives
//! beside the test kit, in `testkit/launcher`, and depends on nothing heavier
//! than this driver does).

use reef_launcher::{Launch, RunningHost};

use crate::error::{Error, ErrorCode, Result};

pub use reef_launcher::host_binary;

pub(crate) struct LocalNode {
    /// Stops the node when dropped.
    _host: RunningHost,
    pub address: String,
    /// The cluster token the node wrote to `<data-dir>/token`.
    pub token: String,
}

impl LocalNode {
    pub async fn start(extra: &[&str]) -> Result<LocalNode> {
        let launch = Launch::head()
            .temp_prefix("reef-local-")
            .args(extra.iter().copied());
        let fail = |e: reef_launcher::LaunchError| Error::new(ErrorCode::Internal, e.to_string());
        // Waiting for the banner blocks: off the async runtime.
        let host = tokio::task::spawn_blocking(move || launch.start())
            .await
            .map_err(|e| Error::new(ErrorCode::Internal, e.to_string()))?
            .map_err(fail)?;
        let token = host.token().map_err(fail)?;
        Ok(LocalNode {
            address: host.address.clone(),
            token,
            _host: host,
        })
    }
}
