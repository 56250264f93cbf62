//! Tenants and the cluster's own credentials.
//!
//! A tenant's token is never stored: its record keeps the token's sha256
//! (hex). The node credential is stored as is (the head presents it to the
//! other nodes, so a head taking the cluster over on the same store needs
//! it); the admin credential by its sha256.

use serde::{Deserialize, Serialize};

use super::{Record, Table};

/// A tenant: a name drivers work under, the hash of its token, its quotas.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TenantRecord {
    pub name: String,
    /// Lowercase hex sha256 of the tenant's token.
    pub token_sha256: String,
    pub created_at_ms: u64,
    /// Records written before quotas existed have none: unlimited.
    #[serde(default)]
    pub quotas: TenantQuotas,
}

/// A tenant's quotas as stored; `None` is unlimited (see
/// `reef.v1.TenantQuotas`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TenantQuotas {
    pub max_pending_tasks: Option<u64>,
    pub max_actors: Option<u64>,
    pub max_cpus: Option<f64>,
    pub max_call_memory: Option<u64>,
    pub max_arena_bytes: Option<u64>,
    pub max_placement_groups: Option<u64>,
    /// The tenant's share weight (not a limit); `None` (a record written
    /// before weights existed too) is 1.
    pub weight: Option<f64>,
    /// CPUs its work may hold at once on a node (more waits).
    pub max_cpus_in_use: Option<f64>,
    /// Wasm instances its work may have at once on a node.
    pub max_instances: Option<u64>,
    /// CPU milliseconds one call may run.
    pub max_call_cpu_ms: Option<u64>,
    /// Bytes of its objects a node may have spilled.
    pub max_spill_bytes: Option<u64>,
    /// Bytes of its logs a node keeps.
    pub max_log_bytes: Option<u64>,
}

impl From<&reef_proto::TenantQuotas> for TenantQuotas {
    fn from(q: &reef_proto::TenantQuotas) -> Self {
        TenantQuotas {
            max_pending_tasks: q.max_pending_tasks,
            max_actors: q.max_actors,
            max_cpus: q.max_cpus,
            max_call_memory: q.max_call_memory,
            max_arena_bytes: q.max_arena_bytes,
            max_placement_groups: q.max_placement_groups,
            weight: q.weight,
            max_cpus_in_use: q.max_cpus_in_use,
            max_instances: q.max_instances,
            max_call_cpu_ms: q.max_call_cpu_ms,
            max_spill_bytes: q.max_spill_bytes,
            max_log_bytes: q.max_log_bytes,
        }
    }
}

impl From<&TenantQuotas> for reef_proto::TenantQuotas {
    fn from(q: &TenantQuotas) -> Self {
        reef_proto::TenantQuotas {
            max_pending_tasks: q.max_pending_tasks,
            max_actors: q.max_actors,
            max_cpus: q.max_cpus,
            max_call_memory: q.max_call_memory,
            max_arena_bytes: q.max_arena_bytes,
            max_placement_groups: q.max_placement_groups,
            weight: q.weight,
            max_cpus_in_use: q.max_cpus_in_use,
            max_instances: q.max_instances,
            max_call_cpu_ms: q.max_call_cpu_ms,
            max_spill_bytes: q.max_spill_bytes,
            max_log_bytes: q.max_log_bytes,
        }
    }
}

impl Record for TenantRecord {
    const TABLE: &'static str = "tenants";
    const WHAT: &'static str = "tenant";
    type Key = str;

    fn encode_key(key: &str) -> Vec<u8> {
        key.as_bytes().to_vec()
    }

    fn storage_key(&self) -> Vec<u8> {
        self.name.as_bytes().to_vec()
    }
}

/// Tenants keyed by name.
pub type TenantTable = Table<TenantRecord>;

/// The cluster's node and admin credentials, one record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterCredentials {
    /// The node credential (cluster-internal RPCs), as is.
    pub node_token: String,
    /// Lowercase hex sha256 of the admin credential.
    pub admin_sha256: String,
    /// Whether the tenant `default` was ever created: a head does not
    /// create it again once an admin removed it.
    pub default_tenant_created: bool,
}

impl ClusterCredentials {
    /// The one key the record is stored under.
    pub const KEY: &'static str = "cluster";
}

impl Record for ClusterCredentials {
    const TABLE: &'static str = "credentials";
    const WHAT: &'static str = "cluster credentials";
    type Key = str;

    fn encode_key(key: &str) -> Vec<u8> {
        key.as_bytes().to_vec()
    }

    fn storage_key(&self) -> Vec<u8> {
        Self::KEY.as_bytes().to_vec()
    }
}

/// The credentials record (one key).
pub type CredentialTable = Table<ClusterCredentials>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::Storage;
    use std::sync::Arc;

    fn round_trip(store: Arc<dyn Storage>) {
        let tenants = TenantTable::new(store.clone());
        assert_eq!(tenants.get("team-a").unwrap(), None);
        for (name, hash) in [("team-b", "bb"), ("team-a", "aa")] {
            tenants
                .put(&TenantRecord {
                    name: name.into(),
                    token_sha256: hash.into(),
                    created_at_ms: 7,
                    quotas: TenantQuotas {
                        max_actors: Some(3),
                        weight: Some(2.5),
                        max_instances: Some(4),
                        max_log_bytes: Some(1 << 20),
                        ..Default::default()
                    },
                })
                .unwrap();
        }
        let names: Vec<String> = tenants.all().unwrap().into_iter().map(|t| t.name).collect();
        assert_eq!(names, ["team-a", "team-b"]);
        let a = tenants.get("team-a").unwrap().unwrap();
        assert_eq!(
            (
                a.token_sha256.as_str(),
                a.quotas.max_actors,
                a.quotas.weight
            ),
            ("aa", Some(3), Some(2.5))
        );
        assert_eq!(
            (a.quotas.max_instances, a.quotas.max_log_bytes),
            (Some(4), Some(1 << 20))
        );
        // A record written before quotas existed loads as unlimited.
        store
            .put(
                TenantRecord::TABLE,
                b"old",
                br#"{"name":"old","token_sha256":"cc","created_at_ms":1}"#,
            )
            .unwrap();
        let old = tenants.get("old").unwrap().unwrap();
        assert_eq!(old.quotas, TenantQuotas::default());
        assert_eq!(old.quotas.weight, None, "an old record has weight 1");
        assert!(tenants.delete("old").unwrap());
        assert!(tenants.delete("team-a").unwrap());
        assert!(!tenants.delete("team-a").unwrap());
        assert_eq!(tenants.get("team-a").unwrap(), None);

        let credentials = CredentialTable::new(store.clone());
        assert_eq!(credentials.get(ClusterCredentials::KEY).unwrap(), None);
        let record = ClusterCredentials {
            node_token: "n".into(),
            admin_sha256: "ad".into(),
            default_tenant_created: true,
        };
        credentials.put(&record).unwrap();
        // Read back through a new table over the same store (as a restarted head does).
        let again = CredentialTable::new(store);
        assert_eq!(again.get(ClusterCredentials::KEY).unwrap(), Some(record));
    }

    #[test]
    fn tenants_and_credentials_round_trip_on_the_file_store() {
        let (dir, store) = crate::test_util::file_store();
        round_trip(store);
        // Reopened (a head restarted on its data directory): still there.
        let reopened: Arc<dyn Storage> = Arc::new(crate::FileStore::open(dir.path()).unwrap());
        let names: Vec<String> = TenantTable::new(reopened)
            .all()
            .unwrap()
            .into_iter()
            .map(|t| t.name)
            .collect();
        assert_eq!(names, ["team-b"]);
    }

    #[test]
    fn tenants_and_credentials_round_trip_on_redis() {
        let redis = crate::test_util::RedisServer::start(None);
        round_trip(Arc::new(crate::RedisStore::open(&redis.url).unwrap()));
    }
}
