//! `reef.v1.Tenants`: `host tenant add|list|set|remove`, served by every node to
//! the admin credential only (see `auth::accepted`) and passed on to the
//! control plane, which keeps the tenant table.

use std::sync::Arc;

use reef_proto as pb;
use reef_proto::tenants_server::Tenants;
use tonic::{Request, Response, Status};

use crate::cluster::Membership;
use crate::error::{ErrorCode, ReefError};

pub struct TenantService {
    cluster: Arc<Membership>,
}

impl TenantService {
    pub fn new(cluster: Arc<Membership>) -> Self {
        TenantService { cluster }
    }

    fn control_plane(&self) -> Result<Arc<dyn reef_gcs::ControlPlane>, Status> {
        self.cluster.gcs().map_err(|_| {
            ReefError::new(
                ErrorCode::Internal,
                "tenants live in the control plane: this node has none",
            )
            .into()
        })
    }
}

#[tonic::async_trait]
impl Tenants for TenantService {
    async fn add(
        &self,
        request: Request<pb::AddTenantRequest>,
    ) -> Result<Response<pb::TenantInfo>, Status> {
        let req = request.into_inner();
        let info = self
            .control_plane()?
            .add_tenant(&req.name, &req.token_sha256, req.quotas.unwrap_or_default())
            .await?;
        Ok(Response::new(info))
    }

    async fn list(
        &self,
        _request: Request<pb::ListTenantsRequest>,
    ) -> Result<Response<pb::ListTenantsReply>, Status> {
        let tenants = self.control_plane()?.list_tenants().await?;
        Ok(Response::new(pb::ListTenantsReply { tenants }))
    }

    async fn set_quotas(
        &self,
        request: Request<pb::SetTenantQuotasRequest>,
    ) -> Result<Response<pb::TenantInfo>, Status> {
        let req = request.into_inner();
        let info = self
            .control_plane()?
            .set_tenant_quotas(&req.name, req.quotas.unwrap_or_default())
            .await?;
        Ok(Response::new(info))
    }

    async fn remove(
        &self,
        request: Request<pb::RemoveTenantRequest>,
    ) -> Result<Response<pb::TenantInfo>, Status> {
        let name = request.into_inner().name;
        let info = self.control_plane()?.remove_tenant(&name).await?;
        Ok(Response::new(info))
    }
}
