//! Helpers for the integration tests: guest modules, private nodes, and the
//! `host` binary for CLI-level tests.

pub mod cluster3;

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

/// A guest module built by `scripts/build-guests.sh` (`make test` builds them first).
pub fn guest(name: &str) -> PathBuf {
    let path = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target/guests"))
        .join(format!("{name}.wasm"));
    assert!(
        path.exists(),
        "{} is missing: run scripts/build-guests.sh",
        path.display()
    );
    path
}

/// The `host` binary of this build.
pub fn host_bin() -> PathBuf {
    let bin = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../target/release/host"
    ));
    assert!(
        bin.exists(),
        "{} is missing: cargo build --release",
        bin.display()
    );
    bin
}

/// The error a task failed with (panics when it succeeded).
pub async fn task_error(cluster: &reef::Cluster, r: reef::ObjectRef) -> reef::Error {
    cluster
        .get_bytes(&r)
        .await
        .err()
        .expect("the task should fail")
}

/// `add(a, b)` of a module that exports it (every language's demo does).
pub async fn add(cluster: &reef::Cluster, m: &reef::Module, a: f64, b: f64) -> f64 {
    let r = cluster.task(m, "add").arg(a).arg(b).submit().unwrap();
    cluster.get::<f64>(&r).await.unwrap()
}

/// After a failure: the node still runs `demo`'s tasks and, when given, still
/// holds an object with exactly these bytes.
pub async fn still_serving(
    cluster: &reef::Cluster,
    demo: &reef::Module,
    kept: Option<(&reef::ObjectRef, &[u8])>,
) {
    assert_eq!(add(cluster, demo, 20.0, 22.0).await, 42.0);
    if let Some((kept, expected)) = kept {
        assert_eq!(&cluster.get_bytes(kept).await.unwrap()[..], expected);
    }
}

/// The seed demo, the same in every guest language: a 64 MiB array of f64 (0..8M),
/// four `sum_slice` tasks over zero-copy views of quarters of it, and an
/// `Accumulator` actor fed 10, 5, 100. Panics unless the numbers are the seed's:
/// partial sums 2.0e12 / 6.0e12 / 1.0e13 / 1.4e13 (total 3.2e13), totals 10 / 15 / 115.
pub async fn assert_seed_demo(cluster: &reef::Cluster, module: &std::path::Path) {
    let m = cluster.register_file(module).await.unwrap();
    let xs: Vec<f64> = (0..8_000_000u64).map(|i| i as f64).collect();
    let data = cluster.put_f64s(&xs).await.unwrap();
    let parts: Vec<_> = (0..4u64)
        .map(|q| {
            cluster
                .task(&m, "sum_slice")
                .arg(&data)
                .arg(q * 2_000_000)
                .arg((q + 1) * 2_000_000)
                .submit()
                .unwrap()
        })
        .collect();
    let sums: Vec<f64> = cluster.get_many(&parts).await.unwrap();
    let expected: Vec<f64> = (0..4u64)
        .map(|q| (q * 2_000_000..(q + 1) * 2_000_000).map(|i| i as f64).sum())
        .collect();
    assert_eq!(sums, expected, "{}", module.display());
    assert_eq!(format!("{:.1e}", sums[0]), "2.0e12");
    assert_eq!(format!("{:.1e}", sums[3]), "1.4e13");
    assert_eq!(format!("{:.1e}", sums.iter().sum::<f64>()), "3.2e13");

    let acc = cluster.actor(&m, "Accumulator").create().await.unwrap();
    let mut totals = Vec::new();
    for x in [10.0, 5.0, 100.0] {
        totals.push(
            cluster
                .get::<f64>(&acc.call("add").arg(x).submit().unwrap())
                .await
                .unwrap(),
        );
    }
    assert_eq!(totals, vec![10.0, 15.0, 115.0], "{}", module.display());
}

/// A private node with a small arena (tests run in parallel).
pub async fn node() -> reef::Cluster {
    node_with(&[]).await
}

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

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `host start` process managed by a test (killed on drop).
pub struct HostProcess {
    pub child: Child,
    pub port: u16,
    pub address: String,
    pub dir: PathBuf,
    /// The cluster token file (the head's, for a worker).
    pub token_file: PathBuf,
}

impl HostProcess {
    /// Starts `host start` on a free port with its data in `dir`; waits for its banner.
    pub fn start(dir: &std::path::Path, extra: &[&str]) -> HostProcess {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        Self::start_on(dir, port, extra).expect("node did not start")
    }

    /// Starts a node that joins the cluster of `head` (with its token).
    pub fn start_worker(dir: &std::path::Path, head: &HostProcess, extra: &[&str]) -> HostProcess {
        let token = head.dir.join("token");
        let mut args = vec![
            "--address",
            head.address.as_str(),
            "--token-file",
            token.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let port = free_port();
        let mut node = Self::spawn(dir, port, false, &args).expect("worker node did not start");
        node.token_file = token;
        node
    }

    pub fn start_on(
        dir: &std::path::Path,
        port: u16,
        extra: &[&str],
    ) -> Result<HostProcess, String> {
        Self::spawn(dir, port, true, extra)
    }

    /// Starts `host start` (`--head` when `head`) and waits for its banner;
    /// on failure returns what it logged.
    pub fn spawn(
        dir: &std::path::Path,
        port: u16,
        head: bool,
        extra: &[&str],
    ) -> Result<HostProcess, String> {
        use std::io::BufRead;
        let store: &[&str] = if extra.contains(&"--object-store-memory") {
            &[]
        } else {
            &["--object-store-memory", "128MiB"]
        };
        let mut child = Command::new(host_bin())
            .arg("start")
            .args(head.then_some("--head"))
            .args(["--stop-on-stdin-close", "--port"])
            .arg(port.to_string())
            .arg("--data-dir")
            .arg(dir)
            .args(store)
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            // A file, not a pipe: a node must never block on a full pipe.
            .stderr(std::fs::File::create(dir.join("node.log")).unwrap())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        if !line.contains("listening on") {
            let _ = child.wait();
            return Err(std::fs::read_to_string(dir.join("node.log")).unwrap_or_default());
        }
        Ok(HostProcess {
            child,
            port,
            address: format!("127.0.0.1:{port}"),
            dir: dir.to_owned(),
            token_file: dir.join("token"),
        })
    }

    /// The cluster token this node wrote to `<data-dir>/token`.
    pub fn token(&self) -> String {
        std::fs::read_to_string(&self.token_file)
            .expect("the node's token file")
            .trim()
            .to_string()
    }

    /// A driver connected to this node.
    pub async fn connect(&self) -> reef::Cluster {
        reef::Cluster::connect_with_token(&self.address, &self.token())
            .await
            .expect("connecting to the node")
    }

    /// Runs a `host` subcommand against this node.
    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new(host_bin())
            .args(args)
            .arg("--address")
            .arg(&self.address)
            .arg("--token-file")
            .arg(&self.token_file)
            .output()
            .unwrap()
    }

    /// What the process wrote to stderr (its log).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("node.log")).unwrap_or_default()
    }

    /// Waits for the process to exit (after `host stop`).
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = std::time::Instant::now() + timeout;
        while std::time::Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for HostProcess {
    /// Closing the node's stdin stops it cleanly (it removes its arena file).
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        if self.wait_exit(Duration::from_secs(5)).is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
