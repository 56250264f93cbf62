//! Test helpers shared by the unit tests.

use std::sync::Arc;

use crate::{FileStore, Storage};

/// A fresh [`FileStore`] in a temporary directory (kept while the guard lives).
pub(crate) fn file_store() -> (tempfile::TempDir, Arc<dyn Storage>) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(FileStore::open(dir.path()).unwrap());
    (dir, store)
}

/// A `redis-server` of its own on a free port, in a temporary directory,
/// killed on drop. Panics (it never skips) when `redis-server` is missing.
pub(crate) struct RedisServer {
    child: std::process::Child,
    pub url: String,
    _dir: tempfile::TempDir,
}

impl RedisServer {
    pub fn start(password: Option<&str>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut cmd = std::process::Command::new("redis-server");
        cmd.args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(dir.path())
            .stdout(std::process::Stdio::null());
        if let Some(password) = password {
            cmd.args(["--requirepass", password]);
        }
        let child = cmd
            .spawn()
            .expect("redis-server is missing: run scripts/install-deps.sh");
        let auth = password.map(|p| format!(":{p}@")).unwrap_or_default();
        let url = format!("redis://{auth}127.0.0.1:{port}");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "redis-server did not listen"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        Self {
            child,
            url,
            _dir: dir,
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
