//! `reef.v1.PlacementGroups`: drivers' placement-group calls, served by
//! every node and passed on to the control plane (see `cluster::groups`).

use std::sync::Arc;
use std::time::Duration;

use reef_core::{Caller, TenantId};
use reef_proto as pb;
use reef_proto::placement_groups_server::PlacementGroups;
use tonic::{Request, Response, Status};

use crate::error::ReefError;
use crate::node::Node;
use crate::quotas::Slot;

pub struct GroupService {
    node: Arc<Node>,
}

impl GroupService {
    pub fn new(node: Arc<Node>) -> Self {
        GroupService { node }
    }

    fn control_plane(&self) -> Result<Arc<dyn reef_gcs::ControlPlane>, Status> {
        self.node.cluster.gcs().map_err(|_| {
            to_status(ReefError::new(
                crate::error::ErrorCode::UnknownPlacementGroup,
                "placement groups need a control plane: start the node with --head \
                 or join a cluster with --address",
            ))
        })
    }

    /// Notes the group's state here (tasks placed next must see it).
    fn seen(&self, info: pb::PlacementGroupInfo) -> Response<pb::PlacementGroupInfo> {
        self.node.bundles.note(&info);
        Response::new(info)
    }
}

impl GroupService {
    /// Takes a place under the tenant's placement-group quota: its groups
    /// created through this node, less those the control plane says are
    /// gone, and the creations under way.
    async fn take_quota(
        &self,
        control_plane: &Arc<dyn reef_gcs::ControlPlane>,
        tenant: &TenantId,
    ) -> Result<Slot, Status> {
        let ids = self.node.quotas.groups_of(tenant).unwrap_or_default();
        let mut gone = Vec::new();
        for id in ids {
            let removed = match control_plane.pg_get(id).await {
                Ok(info) => matches!(
                    pb::PlacementGroupState::try_from(info.state),
                    Ok(pb::PlacementGroupState::PgRemoved | pb::PlacementGroupState::PgFailed)
                ),
                Err(status) => {
                    ReefError::from(status).code == crate::error::ErrorCode::UnknownPlacementGroup
                }
            };
            if removed {
                gone.push(id);
            }
        }
        self.node
            .quotas
            .take_group(tenant, &gone)
            .map_err(to_status)
    }
}

/// The group `id` as the control plane has it, if `tenant` (`None`: the
/// admin) may see it: another tenant's group answers as a made-up id does.
async fn group_of(
    control_plane: &Arc<dyn reef_gcs::ControlPlane>,
    id: u64,
    tenant: Option<&TenantId>,
) -> Result<pb::PlacementGroupInfo, Status> {
    let info = control_plane.pg_get(id).await?;
    match tenant {
        Some(tenant) if TenantId::from_wire(&info.tenant) != *tenant => {
            Err(to_status(ReefError::new(
                crate::error::ErrorCode::UnknownPlacementGroup,
                format!("placement group {id} does not exist"),
            )))
        }
        _ => Ok(info),
    }
}

/// The tenant whose quotas a request counts against (`None`: the admin's).
fn quota_tenant<T>(request: &Request<T>) -> Option<TenantId> {
    match request.extensions().get::<Caller>() {
        Some(Caller::Tenant(tenant)) => Some(tenant.clone()),
        _ => None,
    }
}

/// Errors as the control plane sends them: the `reef.v1.Error` in the details.
fn to_status(e: ReefError) -> Status {
    e.to_status(tonic::Code::FailedPrecondition)
}

#[tonic::async_trait]
impl PlacementGroups for GroupService {
    async fn create(
        &self,
        request: Request<pb::CreatePlacementGroupRequest>,
    ) -> Result<Response<pb::PlacementGroupInfo>, Status> {
        let tenant = quota_tenant(&request);
        let control_plane = self.control_plane()?;
        let slot = match &tenant {
            Some(tenant) => Some(self.take_quota(&control_plane, tenant).await?),
            None => None,
        };
        let mut create = request.into_inner();
        // The admin's groups are the default tenant's, as its work is.
        create.tenant = tenant.as_ref().map(TenantId::to_wire).unwrap_or_default();
        let reply = control_plane.pg_create(create).await?;
        if let Some(slot) = slot {
            slot.record(reply.id);
        }
        Ok(self.seen(reply))
    }

    async fn get(
        &self,
        request: Request<pb::PlacementGroupId>,
    ) -> Result<Response<pb::PlacementGroupInfo>, Status> {
        let tenant = quota_tenant(&request);
        let reply = group_of(
            &self.control_plane()?,
            request.get_ref().id,
            tenant.as_ref(),
        )
        .await?;
        Ok(self.seen(reply))
    }

    async fn wait(
        &self,
        request: Request<pb::WaitPlacementGroupRequest>,
    ) -> Result<Response<pb::PlacementGroupInfo>, Status> {
        let tenant = quota_tenant(&request);
        let request = request.into_inner();
        let control_plane = self.control_plane()?;
        group_of(&control_plane, request.id, tenant.as_ref()).await?;
        // Never wait forever on the control plane's side.
        let timeout = match request.timeout_ms {
            0 => Duration::from_secs(3600),
            ms => Duration::from_millis(ms),
        };
        let reply = control_plane.pg_wait(request.id, timeout).await?;
        Ok(self.seen(reply))
    }

    async fn remove(
        &self,
        request: Request<pb::PlacementGroupId>,
    ) -> Result<Response<pb::Empty>, Status> {
        let tenant = quota_tenant(&request);
        let id = request.into_inner().id;
        let control_plane = self.control_plane()?;
        group_of(&control_plane, id, tenant.as_ref()).await?;
        control_plane.pg_remove(id).await?;
        self.node.bundles.forget(id);
        self.node.quotas.remove_group(id);
        Ok(Response::new(pb::Empty {}))
    }
}
