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

use std::collections::HashMap;
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
    /// As in keys and in the per-node answers: the tenant's name, or `*`.
    fn name(&self) -> &str {
        match self {
            Registrant::Tenant(t) => t.as_str(),
            Registrant::Public => PUBLIC,
        }
    }

    /// Its control-plane key for module `hash`.
    fn key(&self, hash: &str) -> String {
        format!("{hash}/{}", self.name())
    }
}

/// Registrants known to be recorded, by module hash (looked up without
/// allocating: every submission asks), and how many (at most `MAX_KNOWN`).
#[derive(Default)]
struct Known {
    by_hash: HashMap<String, Vec<String>>,
    count: usize,
}

pub struct ModuleOwners {
    cluster: Arc<Membership>,
    known: Mutex<Known>,
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
        if self.knows(hash, who.name()) {
            return Ok(());
        }
        if let Ok(gcs) = self.cluster.gcs() {
            gcs.kv_put(NAMESPACE, &who.key(hash), bytes::Bytes::new(), true)
                .await
                .map_err(|s| {
                    crate::cluster::rpc_error(&format!("recording module {hash}'s registrant"), s)
                })?;
        }
        self.remember(hash, who);
        Ok(())
    }

    /// Whether `tenant` may run module `hash`, if this node can tell
    /// without asking: a node without a control plane has no tenants but
    /// the default one, and checks nothing.
    pub fn may_run_now(&self, hash: &str, tenant: &TenantId) -> Option<bool> {
        if !self.cluster.is_clustered() {
            return Some(true);
        }
        let known = self.known.lock().unwrap();
        let registrants = known.by_hash.get(hash)?;
        registrants
            .iter()
            .any(|r| r == PUBLIC || r == tenant.as_str())
            .then_some(true)
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
        for who in [Registrant::Tenant(tenant.clone()), Registrant::Public] {
            match gcs.kv_get(NAMESPACE, &who.key(hash)).await {
                Ok(Some(_)) => {
                    self.remember(hash, &who);
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

    fn knows(&self, hash: &str, registrant: &str) -> bool {
        let known = self.known.lock().unwrap();
        known
            .by_hash
            .get(hash)
            .is_some_and(|r| r.iter().any(|name| name == registrant))
    }

    fn remember(&self, hash: &str, who: &Registrant) {
        let mut known = self.known.lock().unwrap();
        if known.count >= MAX_KNOWN {
            *known = Known::default();
        }
        let registrants = known.by_hash.entry(hash.to_string()).or_default();
        if !registrants.iter().any(|name| name == who.name()) {
            registrants.push(who.name().to_string());
            known.count += 1;
        }
    }
}

/// The error of a module hash that is not registered (or not the caller's).
pub fn unknown_module(hash: &str) -> ReefError {
    ReefError::new(
        ErrorCode::UnknownModule,
        format!("no module with hash {hash} is registered"),
    )
}
