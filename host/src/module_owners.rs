//! Who may run a module: the tenants that registered it, or everyone when
//! the admin registered it (a public module).
//!
//! Modules are content-addressed and shared by the whole cluster, so two
//! tenants registering the same bytes share one compiled module; what is
//! per tenant is the right to submit to it. Registrations are recorded in
//! the control plane's KV (namespace [`NAMESPACE`], one key per module and
//! registrant, written before the registration answers), so any node can
//! check a submission wherever the module was registered, and the record
//! survives restarts. Each node keeps the answers it has seen; a refusal is
//! not kept (the registration may come a moment later).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use reef_core::TenantId;

use crate::cluster::Membership;
use crate::error::{ErrorCode, ReefError, ReefResult};

/// The control-plane KV namespace of module registrations.
pub const NAMESPACE: &str = "module-registrants";

/// The registrant of a public module (in keys: no tenant name has it).
const PUBLIC: &str = "*";

/// Answers kept per node (module × registrant); beyond it the set starts
/// again (answers are asked of the control plane again).
const MAX_KNOWN: usize = 65_536;

/// Who registered a module.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Registrant {
    /// A tenant's driver: only that tenant may run it.
    Tenant(TenantId),
    /// The admin: every tenant may run it.
    Public,
}

impl Registrant {
    fn key(&self, hash: &str) -> String {
        match self {
            Registrant::Tenant(t) => format!("{hash}/{t}"),
            Registrant::Public => format!("{hash}/{PUBLIC}"),
        }
    }
}

pub struct ModuleOwners {
    cluster: Arc<Membership>,
    /// `module/registrant` keys known to be recorded.
    known: Mutex<HashSet<String>>,
}

impl ModuleOwners {
    pub fn new(cluster: Arc<Membership>) -> Self {
        ModuleOwners {
            cluster,
            known: Mutex::default(),
        }
    }

    /// Records that `who` registered module `hash` (cluster-wide, in the
    /// control plane; without one, nothing is checked).
    pub async fn record(&self, hash: &str, who: &Registrant) -> ReefResult<()> {
        let key = who.key(hash);
        if self.knows(&key) {
            return Ok(());
        }
        if let Ok(gcs) = self.cluster.gcs() {
            gcs.kv_put(NAMESPACE, &key, bytes::Bytes::new(), true)
                .await
                .map_err(|s| {
                    crate::cluster::rpc_error(&format!("recording module {hash}'s registrant"), s)
                })?;
        }
        self.remember(key);
        Ok(())
    }

    /// Whether `tenant` may run module `hash`, if this node can tell
    /// without asking: a node without a control plane has no tenants but
    /// the default one, and checks nothing.
    pub fn may_run_now(&self, hash: &str, tenant: &TenantId) -> Option<bool> {
        if !self.cluster.is_clustered() {
            return Some(true);
        }
        let own = Registrant::Tenant(tenant.clone()).key(hash);
        let public = Registrant::Public.key(hash);
        (self.knows(&own) || self.knows(&public)).then_some(true)
    }

    /// Whether `tenant` may run module `hash`: it or the admin registered
    /// it. An unreachable control plane answers no.
    pub async fn may_run(&self, hash: &str, tenant: &TenantId) -> bool {
        if let Some(allowed) = self.may_run_now(hash, tenant) {
            return allowed;
        }
        let Ok(gcs) = self.cluster.gcs() else {
            return false;
        };
        for key in [
            Registrant::Tenant(tenant.clone()).key(hash),
            Registrant::Public.key(hash),
        ] {
            match gcs.kv_get(NAMESPACE, &key).await {
                Ok(Some(_)) => {
                    self.remember(key);
                    return true;
                }
                Ok(None) => {}
                Err(status) => {
                    tracing::debug!("asking who registered module {hash}: {status}");
                    return false;
                }
            }
        }
        false
    }

    /// Refuses a module `tenant` may not run exactly as an unknown hash is
    /// refused.
    pub async fn check(&self, hash: &str, tenant: &TenantId) -> ReefResult<()> {
        if self.may_run(hash, tenant).await {
            Ok(())
        } else {
            Err(unknown_module(hash))
        }
    }

    fn knows(&self, key: &str) -> bool {
        self.known.lock().unwrap().contains(key)
    }

    fn remember(&self, key: String) {
        let mut known = self.known.lock().unwrap();
        if known.len() >= MAX_KNOWN {
            known.clear();
        }
        known.insert(key);
    }
}

/// The error of a module hash that is not registered (or not the caller's).
pub fn unknown_module(hash: &str) -> ReefError {
    ReefError::new(
        ErrorCode::UnknownModule,
        format!("no module with hash {hash} is registered"),
    )
}
