//! The node-to-node service (`reef.v1.Peer`): work forwarded here, results
//! reported to their owner, the owner's object directory, transfers, and
//! placement-group reservations asked for by the control plane.

use std::sync::Arc;
use std::time::Duration;

use reef_proto as pb;
use reef_proto::peer_server::Peer;
use tonic::{Request, Response, Status};

use crate::node::Node;

/// How long a `Locate` with no timeout waits for an object to be sealed.
const LOCATE_WAIT: Duration = Duration::from_secs(24 * 3600);

pub struct PeerService {
    node: Arc<Node>,
}

impl PeerService {
    pub fn new(node: Arc<Node>) -> Self {
        PeerService { node }
    }
}

#[tonic::async_trait]
impl Peer for PeerService {
    async fn forward(
        &self,
        request: Request<pb::ForwardBatch>,
    ) -> Result<Response<pb::Empty>, Status> {
        // The control plane lists a node (so others forward to it) a moment
        // before its registration reply arrives: work waits for the join.
        self.node.joined().await;
        for work in request.into_inner().work {
            self.node.accept_forwarded(work);
        }
        Ok(Response::new(pb::Empty {}))
    }

    async fn objects_ready(
        &self,
        request: Request<pb::ObjectsReadyBatch>,
    ) -> Result<Response<pb::Empty>, Status> {
        self.node.objects_ready(request.into_inner().objects);
        Ok(Response::new(pb::Empty {}))
    }

    async fn locate(
        &self,
        request: Request<pb::LocateRequest>,
    ) -> Result<Response<pb::LocateReply>, Status> {
        let r = request.into_inner();
        let wait = match r.timeout_ms {
            0 => LOCATE_WAIT,
            ms => Duration::from_millis(ms),
        };
        Ok(Response::new(
            self.node.objects.locate_for(r.id, wait).await,
        ))
    }

    async fn add_location(
        &self,
        request: Request<pb::AddLocationRequest>,
    ) -> Result<Response<pb::Empty>, Status> {
        let r = request.into_inner();
        self.node.objects.add_location(r.id, r.node_id);
        Ok(Response::new(pb::Empty {}))
    }

    async fn free(&self, request: Request<pb::FreeRequest>) -> Result<Response<pb::Empty>, Status> {
        self.node.objects.on_free(request.into_inner().ids);
        Ok(Response::new(pb::Empty {}))
    }

    async fn reserve_bundles(
        &self,
        request: Request<pb::ReserveBundlesRequest>,
    ) -> Result<Response<pb::ReserveBundlesReply>, Status> {
        let reply = match self.node.bundles.reserve(request.into_inner().bundles) {
            Ok(()) => pb::ReserveBundlesReply {
                reserved: true,
                error: String::new(),
            },
            Err(e) => pb::ReserveBundlesReply {
                reserved: false,
                error: e.to_string(),
            },
        };
        Ok(Response::new(reply))
    }

    async fn release_bundles(
        &self,
        request: Request<pb::ReleaseBundlesRequest>,
    ) -> Result<Response<pb::Empty>, Status> {
        self.node
            .bundles
            .release(request.into_inner().placement_group_id);
        Ok(Response::new(pb::Empty {}))
    }

    async fn kill_actor(
        &self,
        request: Request<pb::KillActorRequest>,
    ) -> Result<Response<pb::Empty>, Status> {
        let request = request.into_inner();
        let caller = (!request.caller_unrestricted)
            .then(|| reef_core::TenantId::from_wire(&request.caller_tenant));
        self.node
            .actors
            .kill_local(request.actor_id, caller.as_ref())
            .await
            .map_err(Status::from)?;
        Ok(Response::new(pb::Empty {}))
    }

    async fn actor_ended(
        &self,
        request: Request<pb::ActorEndedRequest>,
    ) -> Result<Response<pb::Empty>, Status> {
        let r = request.into_inner();
        let cause = r.cause.map(crate::error::ReefError::from_proto);
        self.node
            .actors
            .ended_elsewhere(r.actor_id, &r.node_id, cause);
        Ok(Response::new(pb::Empty {}))
    }

    async fn object_access(
        &self,
        request: Request<pb::ObjectAccessRequest>,
    ) -> Result<Response<pb::ObjectAccessReply>, Status> {
        let allowed = self.node.objects.answer_access(request.into_inner());
        Ok(Response::new(pb::ObjectAccessReply { allowed }))
    }
}
