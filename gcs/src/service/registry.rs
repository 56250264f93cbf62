//! Modules, jobs and KV: cold paths that go straight to the [`crate::Gcs`]
//! and its durable storage (one synchronous write each, off the async
//! threads).

use std::sync::Arc;

use bytes::Bytes;
use reef_proto::ErrorCode;
use sha2::{Digest, Sha256};
use tonic::{Code, Status};

use super::Inner;
use crate::status::{bad_argument, internal, reef_status};
use crate::Gcs;

/// Storage table of module bytes, keyed by the lowercase hex sha256.
pub const MODULE_BLOB_TABLE: &str = "module_blobs";

/// Runs a blocking GCS call on the blocking pool.
pub(crate) async fn blocking<T: Send + 'static>(
    gcs: &Arc<Gcs>,
    f: impl FnOnce(&Gcs) -> crate::Result<T> + Send + 'static,
) -> Result<T, Status> {
    let gcs = gcs.clone();
    Ok(tokio::task::spawn_blocking(move || f(&gcs))
        .await
        .map_err(internal)??)
}

fn check_hash(hash: &str) -> Result<String, Status> {
    if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad_argument(format!(
            "module hash `{hash}` is not a hex sha256 (64 hex digits)"
        )));
    }
    Ok(hash.to_ascii_lowercase())
}

impl Inner {
    /// Stores a module's bytes under its hash, after checking that the hash
    /// is the sha256 of the bytes. Storing a known module again is a no-op.
    pub(crate) async fn put_module(&self, hash: &str, wasm: Bytes) -> Result<(), Status> {
        let hash = check_hash(hash)?;
        let actual = hex::encode(Sha256::digest(&wasm));
        if actual != hash {
            return Err(bad_argument(format!(
                "module hash {hash} does not match its bytes (sha256 {actual}, {} bytes)",
                wasm.len()
            )));
        }
        blocking(&self.gcs, move |gcs| {
            let store = gcs.storage();
            if store.get(MODULE_BLOB_TABLE, hash.as_bytes())?.is_none() {
                store.put(MODULE_BLOB_TABLE, hash.as_bytes(), &wasm)?;
                tracing::info!(%hash, bytes = wasm.len(), "module stored");
            }
            Ok(())
        })
        .await
    }

    pub(crate) async fn get_module(&self, hash: &str) -> Result<Bytes, Status> {
        let key = check_hash(hash)?;
        let found = blocking(&self.gcs, move |gcs| {
            gcs.storage().get(MODULE_BLOB_TABLE, key.as_bytes())
        })
        .await?;
        found.map(Bytes::from).ok_or_else(|| {
            reef_status(
                Code::NotFound,
                ErrorCode::UnknownModule,
                format!("module {hash} was never registered with the control plane"),
            )
        })
    }
}
