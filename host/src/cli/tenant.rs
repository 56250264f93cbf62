//! `host tenant add|list|remove`: tenants, managed with the admin
//! credential. `add` makes the tenant's token here and sends only its
//! sha256; the token goes to a file (mode 0600) whose path it prints.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use reef_proto as pb;
use reef_proto::auth::TokenChannel;
use reef_proto::tenants_client::TenantsClient;

type Client = TenantsClient<TokenChannel>;

/// Creates tenant `name`, its token written to `output` [default: ./NAME.token].
pub(super) async fn add(mut client: Client, name: &str, output: Option<PathBuf>) -> Result<()> {
    reef_core::tenant::validate_name(name).map_err(anyhow::Error::msg)?;
    let path = output.unwrap_or_else(|| PathBuf::from(format!("{name}.token")));
    let token = reef_proto::auth::generate_token().context("generating the tenant's token")?;
    // The file first: a tenant whose token could not be kept is useless.
    write_new_private(&path, &token)?;
    let request = pb::AddTenantRequest {
        name: name.to_string(),
        token_sha256: hex::decode(crate::token::sha256_hex(&token))?.into(),
    };
    if let Err(status) = client.add(request).await {
        let _ = std::fs::remove_file(&path);
        bail!(
            "adding tenant {name}: {}",
            reef_core::ReefError::from(status)
        );
    }
    let shown = std::fs::canonicalize(&path).unwrap_or(path);
    println!("{}", shown.display());
    Ok(())
}

/// Prints every tenant (one JSON object per line with `json`).
pub(super) async fn list(mut client: Client, json: bool) -> Result<()> {
    let reply = client
        .list(pb::ListTenantsRequest {})
        .await
        .map_err(reef_core::ReefError::from)?
        .into_inner();
    for t in reply.tenants {
        if json {
            let line = serde_json::json!({
                "name": t.name,
                "created_at_ms": t.created_at_ms,
            });
            println!("{line}");
        } else {
            println!("{} (created at {} ms)", t.name, t.created_at_ms);
        }
    }
    Ok(())
}

/// Revokes tenant `name`.
pub(super) async fn remove(mut client: Client, name: &str) -> Result<()> {
    client
        .remove(pb::RemoveTenantRequest {
            name: name.to_string(),
        })
        .await
        .map_err(reef_core::ReefError::from)?;
    println!("tenant {name} removed");
    Ok(())
}

/// Writes `contents` to a new file `path`, mode 0600 (an existing file is an error).
fn write_new_private(path: &Path, contents: &str) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {} (it must not exist)", path.display()))?;
    file.write_all(contents.as_bytes())?;
    file.sync_all()?;
    Ok(())
}
