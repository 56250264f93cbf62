//! The credentials of a starting node (checked by `rpc::auth`): the node
//! credential every node presents to the others and, on the head, the admin
//! credential and the tenant `default`, whose tokens it writes (mode 0600)
//! into its data directory the first time.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use reef_core::TenantId;
use reef_gcs::tables::{ClusterCredentials, CredentialTable, TenantRecord, TenantTable};
use reef_gcs::Storage;
use sha2::{Digest, Sha256};

/// The node credential, in the head's data directory.
pub const NODE_TOKEN_FILE: &str = "node-token";
/// The admin credential, in the head's data directory.
pub const ADMIN_TOKEN_FILE: &str = "admin-token";
/// The token of tenant `default`, in the head's data directory (drivers,
/// `Cluster::local()` and the CLI find it there).
pub const DEFAULT_TENANT_TOKEN_FILE: &str = "token";
/// The environment variable a node reads its node credential from when it
/// has no `--token-file`.
pub const NODE_TOKEN_ENV: &str = "REEF_NODE_TOKEN";

/// The node credential this node checks and presents: from `--token-file`,
/// else `$REEF_NODE_TOKEN`; a head with neither takes the one its
/// control-plane `store` holds (a head restarted, or taking the cluster over
/// on the same Redis), else `<data-dir>/node-token`, else a new one.
pub fn node_token(
    head: bool,
    token_file: Option<&Path>,
    data_dir: &Path,
    store: Option<&Arc<dyn Storage>>,
) -> Result<String> {
    if let Some(path) = token_file {
        return reef_proto::auth::read_token_file(path).map_err(anyhow::Error::msg);
    }
    if let Ok(token) = std::env::var(NODE_TOKEN_ENV) {
        let token = token.trim().to_string();
        reef_proto::auth::validate_token(&token).map_err(anyhow::Error::msg)?;
        return Ok(token);
    }
    if !head {
        bail!(
            "a node joining a cluster needs the node credential (the cluster token nodes \
             share): pass --token-file \
             <head data-dir>/{NODE_TOKEN_FILE} (the head wrote it there) or set {NODE_TOKEN_ENV}"
        );
    }
    if let Some(store) = store {
        if let Some(credentials) =
            CredentialTable::new(store.clone()).get(ClusterCredentials::KEY)?
        {
            return Ok(credentials.node_token);
        }
    }
    let path = data_dir.join(NODE_TOKEN_FILE);
    if path.exists() {
        return reef_proto::auth::read_token_file(&path).map_err(anyhow::Error::msg);
    }
    reef_proto::auth::generate_token().context("generating the node credential")
}

/// On the head: makes sure `store` holds the node credential, the admin
/// credential's hash and tenant `default` (created once: not again after an
/// admin removed it), and writes the tokens it makes to
/// `<data-dir>/{node-token,admin-token,token}` (mode 0600).
pub fn bootstrap_head(data_dir: &Path, store: &Arc<dyn Storage>, node_token: &str) -> Result<()> {
    let table = CredentialTable::new(store.clone());
    let stored = table.get(ClusterCredentials::KEY)?;

    let node_path = data_dir.join(NODE_TOKEN_FILE);
    let on_disk = reef_proto::auth::read_token_file(&node_path).ok();
    if on_disk.as_deref() != Some(node_token) {
        write_private(&node_path, node_token)?;
    }

    let admin_path = data_dir.join(ADMIN_TOKEN_FILE);
    let admin_sha256 = if admin_path.exists() {
        sha256_hex(&reef_proto::auth::read_token_file(&admin_path).map_err(anyhow::Error::msg)?)
    } else if let Some(stored) = &stored {
        // A head taking the cluster over in a new directory: the admin
        // keeps the credential the first head gave out.
        tracing::info!(
            "the admin credential is the one stored by a previous head ({} is not written)",
            admin_path.display()
        );
        stored.admin_sha256.clone()
    } else {
        let token =
            reef_proto::auth::generate_token().context("generating the admin credential")?;
        write_private(&admin_path, &token)?;
        sha256_hex(&token)
    };

    let mut default_tenant_created = stored.as_ref().is_some_and(|s| s.default_tenant_created);
    if !default_tenant_created {
        let tenants = TenantTable::new(store.clone());
        if tenants.get(TenantId::DEFAULT)?.is_none() {
            let path = data_dir.join(DEFAULT_TENANT_TOKEN_FILE);
            let token = if path.exists() {
                reef_proto::auth::read_token_file(&path).map_err(anyhow::Error::msg)?
            } else {
                let token =
                    reef_proto::auth::generate_token().context("generating a tenant token")?;
                write_private(&path, &token)?;
                token
            };
            tenants.put(&TenantRecord {
                name: TenantId::DEFAULT.to_string(),
                token_sha256: sha256_hex(&token),
                created_at_ms: reef_gcs::now_millis(),
                quotas: Default::default(),
            })?;
        }
        default_tenant_created = true;
    }
    table.put(&ClusterCredentials {
        node_token: node_token.to_string(),
        admin_sha256,
        default_tenant_created,
    })?;
    Ok(())
}

/// The lowercase hex sha256 of a token (how the control plane stores it).
pub fn sha256_hex(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Writes `contents` to `path` with mode 0600, replacing it atomically.
pub fn write_private(path: &Path, contents: &str) -> Result<()> {
    let dir = path.parent().context("token path has no directory")?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("creating {}", tmp.display()))?;
    file.write_all(contents.as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_head_writes_its_credentials_once_and_keeps_them() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Storage> = Arc::new(reef_gcs::FileStore::open(dir.path()).unwrap());
        let node = node_token(true, None, dir.path(), Some(&store)).unwrap();
        bootstrap_head(dir.path(), &store, &node).unwrap();
        let read = |name: &str| std::fs::read_to_string(dir.path().join(name)).unwrap();
        for name in [NODE_TOKEN_FILE, ADMIN_TOKEN_FILE, DEFAULT_TENANT_TOKEN_FILE] {
            let mode = std::fs::metadata(dir.path().join(name))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{name}");
        }
        let (admin, tenant) = (read(ADMIN_TOKEN_FILE), read(DEFAULT_TENANT_TOKEN_FILE));
        assert!(node != admin && admin != tenant && node != tenant);
        let default = TenantTable::new(store.clone())
            .require(TenantId::DEFAULT)
            .unwrap();
        assert_eq!(default.token_sha256, sha256_hex(&tenant));

        // Restarted: the same three.
        assert_eq!(
            node_token(true, None, dir.path(), Some(&store)).unwrap(),
            node
        );
        bootstrap_head(dir.path(), &store, &node).unwrap();
        assert_eq!(read(ADMIN_TOKEN_FILE), admin);
        assert_eq!(read(DEFAULT_TENANT_TOKEN_FILE), tenant);

        // An admin removed `default`: a restart does not bring it back.
        TenantTable::new(store.clone())
            .delete(TenantId::DEFAULT)
            .unwrap();
        bootstrap_head(dir.path(), &store, &node).unwrap();
        assert_eq!(
            TenantTable::new(store).get(TenantId::DEFAULT).unwrap(),
            None
        );
    }

    #[test]
    fn a_worker_needs_the_node_credential() {
        let dir = tempfile::tempdir().unwrap();
        let err = node_token(false, None, dir.path(), None).unwrap_err();
        assert!(err.to_string().contains(NODE_TOKEN_FILE), "{err}");
    }
}
