//! The cluster most tenancy tests start from: a head (and a worker), real
//! `host` processes, and two tenants, `team-a` and `team-b`.

use std::path::PathBuf;

use crate::HostProcess;

/// A head, maybe a worker, and the token files of tenants `team-a` and
/// `team-b`, each node in a data directory of its own. Nodes are stopped,
/// then their directories removed, when dropped.
pub struct TwoTenants {
    pub head: HostProcess,
    worker: Option<HostProcess>,
    pub token_a: PathBuf,
    pub token_b: PathBuf,
    /// Declared last: removed after the nodes have stopped.
    _dirs: Vec<tempfile::TempDir>,
}

impl TwoTenants {
    /// On a head and a worker.
    pub fn start() -> TwoTenants {
        Self::launch(&[], true)
    }

    /// On a head alone, started with `flags`.
    pub fn on_head(flags: &[&str]) -> TwoTenants {
        Self::launch(flags, false)
    }

    /// The worker (of a `TwoTenants::start`).
    pub fn worker(&self) -> &HostProcess {
        self.worker
            .as_ref()
            .expect("a worker: started with TwoTenants::start")
    }

    fn launch(head_flags: &[&str], with_worker: bool) -> TwoTenants {
        let dirs: Vec<_> = (0..3)
            .map(|_| tempfile::tempdir().expect("a temporary directory"))
            .collect();
        let head = HostProcess::start(dirs[0].path(), head_flags);
        let worker = with_worker.then(|| HostProcess::start_worker(dirs[1].path(), &head, &[]));
        let token_a = head.add_tenant("team-a", dirs[2].path(), &[]);
        let token_b = head.add_tenant("team-b", dirs[2].path(), &[]);
        TwoTenants {
            head,
            worker,
            token_a,
            token_b,
            _dirs: dirs,
        }
    }
}
