//! Tenants and credentials: the tenant table (written through), who a token
//! is (by its sha256), and the principals every view carries so nodes
//! authenticate drivers without asking.

use std::sync::Arc;

use reef_proto::{ErrorCode, Principal, TenantInfo, TenantQuotas};
use tonic::{Code, Status};

use super::registry::blocking;
use super::Inner;
use crate::clock::now_millis;
use crate::error::GcsError;
use crate::status::{bad_argument, reef_status};
use crate::storage::Storage;
use crate::tables::TenantQuotas as StoredQuotas;
use crate::tables::{ClusterCredentials, CredentialTable, TenantRecord, TenantTable};

/// Bytes of a sha256.
const SHA256_BYTES: usize = 32;

/// The principals in force in `store`: the admin credential (when the head
/// stored one) and every tenant.
pub(crate) fn load_principals(store: &Arc<dyn Storage>) -> crate::Result<Vec<Principal>> {
    let mut principals = Vec::new();
    if let Some(credentials) = CredentialTable::new(store.clone()).get(ClusterCredentials::KEY)? {
        if let Ok(hash) = hex::decode(&credentials.admin_sha256) {
            principals.push(Principal {
                token_sha256: hash.into(),
                admin: true,
                tenant: String::new(),
                quotas: None,
            });
        }
    }
    for tenant in TenantTable::new(store.clone()).all()? {
        principals.push(principal(&tenant)?);
    }
    Ok(principals)
}

fn principal(tenant: &TenantRecord) -> crate::Result<Principal> {
    let hash = hex::decode(&tenant.token_sha256).map_err(|e| {
        GcsError::InvalidArgument(format!("tenant {}: bad token hash: {e}", tenant.name))
    })?;
    Ok(Principal {
        token_sha256: hash.into(),
        admin: false,
        tenant: tenant.name.clone(),
        quotas: Some((&tenant.quotas).into()),
    })
}

fn info(tenant: &TenantRecord) -> TenantInfo {
    TenantInfo {
        name: tenant.name.clone(),
        created_at_ms: tenant.created_at_ms,
        quotas: Some((&tenant.quotas).into()),
    }
}

/// Checks quotas before they are stored (`max_cpus` and `max_cpus_in_use`
/// finite numbers ≥ 0,
/// `weight` a finite number > 0).
fn checked(name: &str, quotas: &TenantQuotas) -> Result<StoredQuotas, Status> {
    if let Some(weight) = quotas.weight {
        if !weight.is_finite() || weight <= 0.0 {
            return Err(bad_argument(format!(
                "tenant {name}: weight must be a number > 0 (got {weight})"
            )));
        }
    }
    for (field, cpus) in [
        ("max_cpus", quotas.max_cpus),
        ("max_cpus_in_use", quotas.max_cpus_in_use),
    ] {
        if let Some(cpus) = cpus {
            if !cpus.is_finite() || cpus < 0.0 {
                return Err(bad_argument(format!(
                    "tenant {name}: {field} must be a number >= 0 (got {cpus})"
                )));
            }
        }
    }
    Ok(quotas.into())
}

impl Inner {
    /// Who holds the token whose sha256 is `token_sha256` (`None`: nobody).
    pub(crate) fn authenticate(&self, token_sha256: &[u8]) -> Option<Principal> {
        self.with_state(|st| {
            st.principals
                .iter()
                .find(|p| p.token_sha256.as_ref() == token_sha256)
                .cloned()
        })
    }

    /// Creates a tenant (`NAME_TAKEN` if one has that name).
    pub(crate) async fn add_tenant(
        &self,
        name: String,
        token_sha256: Vec<u8>,
        quotas: TenantQuotas,
    ) -> Result<TenantInfo, Status> {
        reef_core::tenant::validate_name(&name).map_err(bad_argument)?;
        let quotas = checked(&name, &quotas)?;
        if token_sha256.len() != SHA256_BYTES {
            return Err(bad_argument(format!(
                "the token hash of tenant {name} has {} bytes, not {SHA256_BYTES}",
                token_sha256.len()
            )));
        }
        if self.authenticate(&token_sha256).is_some() {
            return Err(bad_argument(
                "this token is already in use: generate another",
            ));
        }
        let record = TenantRecord {
            name: name.clone(),
            token_sha256: hex::encode(&token_sha256),
            created_at_ms: now_millis(),
            quotas,
        };
        let table = self.tenants.clone();
        let lock = self.tenants_lock.clone();
        let stored = record.clone();
        let added = blocking(move || {
            let _guard = lock.lock().unwrap_or_else(|e| e.into_inner());
            if table.get(&stored.name)?.is_some() {
                return Ok(false);
            }
            table.put(&stored)?;
            Ok(true)
        })
        .await?;
        if !added {
            return Err(reef_status(
                Code::AlreadyExists,
                ErrorCode::NameTaken,
                format!("a tenant named {name} exists"),
            ));
        }
        let principal = principal(&record)?;
        self.with_state(|st| {
            st.principals.push(principal);
            st.bump();
        });
        tracing::info!(tenant = %name, "tenant added");
        Ok(info(&record))
    }

    /// Every tenant, by name.
    pub(crate) async fn list_tenants(&self) -> Result<Vec<TenantInfo>, Status> {
        let table = self.tenants.clone();
        let all = blocking(move || table.all()).await?;
        Ok(all.iter().map(info).collect())
    }

    /// Replaces a tenant's quotas; the next view carries them to every node.
    pub(crate) async fn set_tenant_quotas(
        &self,
        name: String,
        quotas: TenantQuotas,
    ) -> Result<TenantInfo, Status> {
        let quotas = checked(&name, &quotas)?;
        let table = self.tenants.clone();
        let lock = self.tenants_lock.clone();
        let key = name.clone();
        let updated = blocking(move || {
            let _guard = lock.lock().unwrap_or_else(|e| e.into_inner());
            let Some(mut record) = table.get(&key)? else {
                return Ok(None);
            };
            record.quotas = quotas;
            table.put(&record)?;
            Ok(Some(record))
        })
        .await?;
        let Some(record) = updated else {
            return Err(reef_status(
                Code::NotFound,
                ErrorCode::BadArgument,
                format!("there is no tenant named {name}"),
            ));
        };
        let principal = principal(&record)?;
        self.with_state(|st| {
            if let Some(p) = st
                .principals
                .iter_mut()
                .find(|p| !p.admin && p.tenant == name)
            {
                *p = principal;
            }
            st.bump();
        });
        tracing::info!(tenant = %name, "tenant quotas set");
        Ok(info(&record))
    }

    /// Revokes a tenant: its record goes, and the next view (pushed to every
    /// node) no longer carries its credential.
    pub(crate) async fn remove_tenant(&self, name: String) -> Result<TenantInfo, Status> {
        let table = self.tenants.clone();
        let lock = self.tenants_lock.clone();
        let key = name.clone();
        let removed = blocking(move || {
            let _guard = lock.lock().unwrap_or_else(|e| e.into_inner());
            let record = table.get(&key)?;
            if record.is_some() {
                table.delete(&key)?;
            }
            Ok(record)
        })
        .await?;
        let Some(record) = removed else {
            return Err(reef_status(
                Code::NotFound,
                ErrorCode::BadArgument,
                format!("there is no tenant named {name}"),
            ));
        };
        self.with_state(|st| {
            st.principals.retain(|p| p.admin || p.tenant != name);
            st.bump();
        });
        tracing::info!(tenant = %name, "tenant removed");
        Ok(info(&record))
    }
}

#[cfg(test)]
mod tests {
    use sha2::{Digest, Sha256};

    use crate::{ControlPlane, ControlPlaneService, ServiceConfig};

    fn sha(token: &str) -> Vec<u8> {
        Sha256::digest(token.as_bytes()).to_vec()
    }

    fn quotas(max_actors: Option<u64>) -> reef_proto::TenantQuotas {
        reef_proto::TenantQuotas {
            max_actors,
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn tenants_are_added_published_revoked_and_kept_across_restarts() {
        let (_dir, store) = crate::test_util::file_store();
        let service =
            ControlPlaneService::new(store.clone(), "node", ServiceConfig::default()).unwrap();
        let client = service.in_process();
        let info = client
            .add_tenant("team-a", &sha("a"), quotas(Some(5)))
            .await
            .unwrap();
        assert_eq!(info.name, "team-a");
        assert_eq!(info.quotas.unwrap().max_actors, Some(5));
        let bad = reef_proto::TenantQuotas {
            max_cpus: Some(f64::NAN),
            ..Default::default()
        };
        assert!(client.add_tenant("team-d", &sha("d"), bad).await.is_err());
        let zero_weight = reef_proto::TenantQuotas {
            weight: Some(0.0),
            ..Default::default()
        };
        let err = client
            .add_tenant("team-d", &sha("d"), zero_weight)
            .await
            .unwrap_err();
        assert!(
            err.message().contains("weight must be a number > 0"),
            "{err:?}"
        );
        let err = client
            .add_tenant("team-a", &sha("a2"), quotas(None))
            .await
            .unwrap_err();
        assert_eq!(
            reef_core::ReefError::from(err).code,
            reef_proto::ErrorCode::NameTaken
        );
        assert!(client
            .add_tenant("Team A", &sha("x"), quotas(None))
            .await
            .is_err());
        assert!(
            client
                .add_tenant("team-b", &sha("a"), quotas(None))
                .await
                .is_err(),
            "a reused token"
        );
        assert!(client
            .add_tenant("team-c", b"short", quotas(None))
            .await
            .is_err());

        let who = client.authenticate(&sha("a")).await.unwrap().unwrap();
        assert_eq!((who.tenant.as_str(), who.admin), ("team-a", false));
        assert!(client.authenticate(&sha("b")).await.unwrap().is_none());
        let view = service.view();
        assert!(view.principals.iter().any(|p| p.tenant == "team-a"));

        // Kept by a control plane restarted on the same store.
        drop((client, service));
        let service =
            ControlPlaneService::new(store.clone(), "node", ServiceConfig::default()).unwrap();
        let client = service.in_process();
        let names: Vec<String> = client
            .list_tenants()
            .await
            .unwrap()
            .into_iter()
            .map(|t| t.name)
            .collect();
        assert_eq!(names, ["team-a"]);
        let who = client.authenticate(&sha("a")).await.unwrap().unwrap();
        assert_eq!(who.quotas.unwrap().max_actors, Some(5));

        // New quotas replace the old ones, reach the view and are kept.
        let set = client
            .set_tenant_quotas("team-a", quotas(Some(9)))
            .await
            .unwrap();
        assert_eq!(set.quotas.unwrap().max_actors, Some(9));
        let in_view = service.view();
        let p = in_view.principals.iter().find(|p| p.tenant == "team-a");
        assert_eq!(p.unwrap().quotas.as_ref().unwrap().max_actors, Some(9));
        assert!(client
            .set_tenant_quotas("nobody", quotas(None))
            .await
            .is_err());
        drop((client, service));
        let service =
            ControlPlaneService::new(store.clone(), "node", ServiceConfig::default()).unwrap();
        let client = service.in_process();
        let listed = client.list_tenants().await.unwrap();
        assert_eq!(listed[0].quotas.as_ref().unwrap().max_actors, Some(9));

        client.remove_tenant("team-a").await.unwrap();
        assert!(client.authenticate(&sha("a")).await.unwrap().is_none());
        assert!(service.view().principals.is_empty());
        assert!(client.remove_tenant("team-a").await.is_err());
    }
}
