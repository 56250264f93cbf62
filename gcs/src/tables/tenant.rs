//! Tenants and the cluster's own credentials.
//!
//! A tenant's token is never stored: its record keeps the token's sha256
//! (hex). The node credential is stored as is (the head presents it to the
//! other nodes, so a head taking the cluster over on the same store needs
//! it); the admin credential by its sha256.

use serde::{Deserialize, Serialize};

use super::{Record, Table};

/// A tenant: a name drivers work under, and the hash of its token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantRecord {
    pub name: String,
    /// Lowercase hex sha256 of the tenant's token.
    pub token_sha256: String,
    pub created_at_ms: u64,
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
                })
                .unwrap();
        }
        let names: Vec<String> = tenants.all().unwrap().into_iter().map(|t| t.name).collect();
        assert_eq!(names, ["team-a", "team-b"]);
        assert_eq!(tenants.get("team-a").unwrap().unwrap().token_sha256, "aa");
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
