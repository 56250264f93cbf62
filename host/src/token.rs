//! The cluster token of a starting node (see `reef_proto::auth`).

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::{bail, Context, Result};

/// The token this node checks and presents: from `--token-file`, else
/// `$REEF_TOKEN`; a head with neither reads `<data-dir>/token`, which it
/// generated the first time (readable by its owner only), so a head
/// restarted on its data directory keeps its cluster's token and the other
/// nodes reconnect.
pub fn node_token(head: bool, token_file: Option<&Path>, data_dir: &Path) -> Result<String> {
    if let Some(path) = token_file {
        return reef_proto::auth::read_token_file(path).map_err(anyhow::Error::msg);
    }
    if let Ok(token) = std::env::var("REEF_TOKEN") {
        let token = token.trim().to_string();
        reef_proto::auth::validate_token(&token).map_err(anyhow::Error::msg)?;
        return Ok(token);
    }
    if !head {
        bail!(
            "a node joining a cluster needs the cluster token: pass --token-file \
             (the head wrote it to <head data-dir>/token) or set REEF_TOKEN"
        );
    }
    let path = data_dir.join("token");
    if path.exists() {
        return reef_proto::auth::read_token_file(&path).map_err(anyhow::Error::msg);
    }
    let token = reef_proto::auth::generate_token().context("generating a cluster token")?;
    write_private(&path, &token)?;
    Ok(token)
}

/// Writes `contents` to `path` with mode 0600, replacing it atomically.
fn write_private(path: &Path, contents: &str) -> Result<()> {
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
