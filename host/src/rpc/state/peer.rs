//! `PeerState`: what a node answers the node asked by a driver (its own
//! rows and log files).

use std::sync::Arc;

use reef_proto as pb;

use super::api::StateApi;
use super::logs;
use super::scope::Viewer;

/// The node-to-node side: this node's rows and log files.
pub struct NodeStateService {
    api: Arc<StateApi>,
}

impl NodeStateService {
    pub fn new(api: Arc<StateApi>) -> Self {
        NodeStateService { api }
    }
}

#[tonic::async_trait]
impl pb::peer_state_server::PeerState for NodeStateService {
    async fn local_state(
        &self,
        request: tonic::Request<pb::ListRequest>,
    ) -> Result<tonic::Response<pb::ListReply>, tonic::Status> {
        let viewer = Viewer::of(&request);
        let mut request = request.into_inner();
        request.local_only = true;
        Ok(tonic::Response::new(self.api.list(&viewer, request).await?))
    }

    type ReadLogsStream = logs::ChunkStream;

    async fn read_logs(
        &self,
        request: tonic::Request<pb::ReadLogsRequest>,
    ) -> Result<tonic::Response<Self::ReadLogsStream>, tonic::Status> {
        let mut viewer = Viewer::of(&request);
        let mut request = request.into_inner();
        request.local_only = true;
        // The node that received a tenant's request names the tenant.
        if let (None, Some(tenant)) = (viewer.narrowed_to(), &request.scope_tenant) {
            viewer = Viewer::tenant(reef_core::TenantId::from_wire(tenant));
        }
        Ok(tonic::Response::new(
            logs::read(self.api.clone(), &viewer, request).await?,
        ))
    }
}
