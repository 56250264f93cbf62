//! Test tooling in one place, for `tests/` (integration and conformance
//! tests) and `benches/`:
//!
//! * [`HostProcess`]: a real `host start` process in a data directory the
//!   test owns, waited for until it serves and stopped when dropped (built on
//!   [`reef_launcher`], which `reef::Cluster::local` uses too);
//! * [`node`] / [`node_with`]: a private node behind a connected driver;
//! * [`cluster3`]: a head and two workers on 127.0.0.1;
//! * [`TwoTenants`]: a head, a worker and tenants `team-a` and `team-b`;
//! * [`guest`]: the guest modules `scripts/build-guests.sh` builds;
//! * [`arena`]: a node's shared-memory arena (a memfd), seen from outside;
//! * [`redis`]: a real `redis-server` (for the control plane's Redis store);
//! * [`golden`]: the shared golden MessagePack vectors of every SDK's codec.
//!
//! A node started inside the test process takes
//! `reef_host::node::NodeConfig::for_tests`.
//!
//! Nodes are started with `--stop-on-stdin-close`: a test process that dies
//! takes its nodes with it.

pub mod arena;
pub mod cluster3;
pub mod golden;
mod process;
pub mod redis;
mod tenants;

use std::path::PathBuf;

pub use process::HostProcess;
pub use reef_launcher::{
    free_port as try_free_port, host_binary, Launch, LaunchError, RunningHost,
};
pub use tenants::TwoTenants;

/// This workspace's root directory.
pub fn workspace_root() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// Where guest modules are: `$REEF_GUESTS`, else this workspace's `target/guests`.
pub fn guests_dir() -> PathBuf {
    std::env::var_os("REEF_GUESTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target/guests"))
}

/// The path of guest module `name` (`<guests_dir>/<name>.wasm`), whether or not it exists.
pub fn guest_path(name: &str) -> PathBuf {
    guests_dir().join(format!("{name}.wasm"))
}

/// A guest module built by `scripts/build-guests.sh` (`make test` builds them
/// first); panics with what to run when it is missing.
pub fn guest(name: &str) -> PathBuf {
    let path = guest_path(name);
    assert!(
        path.exists(),
        "{} is missing: run scripts/build-guests.sh",
        path.display()
    );
    path
}

/// The `host` binary of this workspace's release build; panics when it is missing.
pub fn host_bin() -> PathBuf {
    let bin = workspace_root().join("target/release/host");
    assert!(
        bin.exists(),
        "{} is missing: cargo build --release -p reef-host",
        bin.display()
    );
    bin
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    reef_launcher::free_port().expect("finding a free port")
}

/// A private node with a 256 MiB arena (tests run in parallel), behind a
/// connected driver; the node stops when the driver is dropped.
pub async fn node() -> reef::Cluster {
    node_with(&[]).await
}

/// [`node`] with extra `host start` arguments.
pub async fn node_with(extra: &[&str]) -> reef::Cluster {
    // For debugging: run against a node started by hand (its log is then visible).
    if let Ok(address) = std::env::var("REEF_TEST_ADDRESS") {
        return reef::Cluster::connect(&address)
            .await
            .expect("connecting to REEF_TEST_ADDRESS");
    }
    std::env::set_var("REEF_HOST", host_bin());
    let mut args = extra.to_vec();
    if !extra.contains(&"--object-store-memory") {
        args.extend_from_slice(&["--object-store-memory", "256MiB"]);
    }
    reef::Cluster::local_with(&args)
        .await
        .expect("starting a local node")
}
