//! Shared bits of the examples: where the guest modules are and which node to use.

use std::path::PathBuf;

/// `$REEF_GUESTS`, or `target/guests` of this workspace (`scripts/build-guests.sh` fills it).
pub fn guest(name: &str) -> PathBuf {
    let dir = std::env::var_os("REEF_GUESTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target/guests")));
    dir.join(format!("{name}.wasm"))
}

/// The node at `$REEF_ADDRESS`, or a private local node started for this run.
pub async fn cluster() -> reef::Result<reef::Cluster> {
    match std::env::var("REEF_ADDRESS") {
        Ok(address) => reef::Cluster::connect(&address).await,
        Err(_) => reef::Cluster::local().await,
    }
}
