//! A private node for `Cluster::local`: a child `host start` process on a
//! free port with its own data directory, stopped when the cluster is dropped.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::error::{Error, ErrorCode, Result};

pub(crate) struct LocalNode {
    child: Child,
    pub address: String,
    /// The cluster token the node wrote to `<data-dir>/token`.
    pub token: String,
    _dir: tempfile::TempDir,
}

/// Where the `host` binary is: `$REEF_HOST`, beside this program (or its
/// parent directory, for `target/*/examples`), else `host` on `PATH`.
pub fn host_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("REEF_HOST") {
        return PathBuf::from(p);
    }
    if let Ok(exe) = std::env::current_exe() {
        for dir in exe.ancestors().skip(1).take(3) {
            let candidate = dir.join("host");
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    PathBuf::from("host")
}

impl LocalNode {
    pub async fn start(extra: &[&str]) -> Result<LocalNode> {
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        tokio::task::spawn_blocking(move || Self::start_blocking(&extra))
            .await
            .map_err(|e| Error::new(ErrorCode::Internal, e.to_string()))?
    }

    fn start_blocking(extra: &[String]) -> Result<LocalNode> {
        let fail = |m: String| Error::new(ErrorCode::Internal, m);
        let dir = tempfile::Builder::new()
            .prefix("reef-local-")
            .tempdir()
            .map_err(|e| fail(format!("creating a data dir: {e}")))?;
        let port = free_port().map_err(|e| fail(format!("finding a free port: {e}")))?;
        let log = std::fs::File::create(dir.path().join("node.log"))
            .map_err(|e| fail(format!("creating the node log: {e}")))?;
        let binary = host_binary();
        let mut cmd = Command::new(&binary);
        cmd.arg("start")
            .arg("--head")
            .arg("--port")
            .arg(port.to_string())
            .arg("--data-dir")
            .arg(dir.path())
            .arg("--stop-on-stdin-close")
            .args(extra)
            // The node stops when this pipe closes: when we drop it, or die.
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log);
        let mut child = cmd.spawn().map_err(|e| {
            fail(format!(
                "starting {}: {e} (set REEF_HOST to the host binary)",
                binary.display()
            ))
        })?;
        let stdout = child.stdout.take().expect("piped");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .map_err(|e| fail(format!("reading the node's banner: {e}")))?;
        if !line.contains("listening on") {
            let _ = child.kill();
            let _ = child.wait();
            let log = std::fs::read_to_string(dir.path().join("node.log")).unwrap_or_default();
            return Err(fail(format!("the local node did not start:\n{log}")));
        }
        let token = reef_proto::auth::read_token_file(&dir.path().join("token")).map_err(fail)?;
        Ok(LocalNode {
            child,
            address: format!("127.0.0.1:{port}"),
            token,
            _dir: dir,
        })
    }
}

impl Drop for LocalNode {
    fn drop(&mut self) {
        // Closing its stdin stops the node cleanly: it fails its tasks and
        // removes its arena file.
        drop(self.child.stdin.take());
        for _ in 0..300 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}
