//! A `host start` process managed by a test: started in a data directory the
//! test owns (a restarted node finds its module cache there), with test-style
//! helpers that panic on failure.

use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use reef_launcher::{Launch, LaunchError, RunningHost};

use crate::{free_port, host_bin};

/// A started node; stops (closing its stdin) when dropped. The launcher's
/// fields and methods (`address`, `port`, `dir`, `token_file`, `pid`, `log`,
/// `kill`, `wait_exit`) are reached through `Deref`.
#[derive(Debug)]
pub struct HostProcess(RunningHost);

impl Deref for HostProcess {
    type Target = RunningHost;
    fn deref(&self) -> &RunningHost {
        &self.0
    }
}

impl DerefMut for HostProcess {
    fn deref_mut(&mut self) -> &mut RunningHost {
        &mut self.0
    }
}

/// A failing test shows the end of each of its nodes' logs (their data
/// directories go with the test).
impl Drop for HostProcess {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = self.log();
            let tail: Vec<&str> = log.lines().rev().take(30).collect();
            eprintln!(
                "--- last lines of the log of the node at {} ---",
                self.address
            );
            for line in tail.iter().rev() {
                eprintln!("{line}");
            }
        }
    }
}

impl HostProcess {
    /// A head node on a free port with its data in `dir`.
    pub fn start(dir: &Path, extra: &[&str]) -> HostProcess {
        Self::start_on(dir, free_port(), extra).expect("node did not start")
    }

    /// A node that joins the cluster of `head` (with its token).
    pub fn start_worker(dir: &Path, head: &HostProcess, extra: &[&str]) -> HostProcess {
        let launch = Launch::worker(head);
        Self::launch(launch, dir, free_port(), extra).expect("worker node did not start")
    }

    /// A head node on `port`; on failure, what it logged.
    pub fn start_on(dir: &Path, port: u16, extra: &[&str]) -> Result<HostProcess, String> {
        Self::spawn(dir, port, true, extra)
    }

    /// `host start` (`--head` when `head`) on `port` with its data in `dir`,
    /// waited for until it serves; on failure, what it logged. A node is
    /// given a 128 MiB arena unless `extra` says otherwise.
    pub fn spawn(dir: &Path, port: u16, head: bool, extra: &[&str]) -> Result<HostProcess, String> {
        Self::launch(Launch::new(head), dir, port, extra)
    }

    fn launch(
        launch: Launch,
        dir: &Path,
        port: u16,
        extra: &[&str],
    ) -> Result<HostProcess, String> {
        let store: &[&str] = if extra.contains(&"--object-store-memory") {
            &[]
        } else {
            &["--object-store-memory", "128MiB"]
        };
        launch
            .binary(host_bin())
            .port(port)
            .data_dir(dir)
            .args(store.iter().chain(extra))
            .start()
            .map(HostProcess)
            .map_err(|e| match e {
                LaunchError::NotStarted { log } => log,
                other => other.to_string(),
            })
    }

    /// The token of tenant `default` (its own, or its head's).
    pub fn token(&self) -> String {
        self.0.token().expect("the node's token file")
    }

    /// The node credential (cluster-internal services).
    pub fn node_token(&self) -> String {
        self.0.node_token().expect("the head's node-token file")
    }

    /// The admin credential.
    pub fn admin_token(&self) -> String {
        self.0.admin_token().expect("the head's admin-token file")
    }

    /// Whether the node compiled a module (it loaded one: registered here,
    /// or fetched by hash to run a task).
    pub fn has_module(&self) -> bool {
        std::fs::read_dir(self.dir.join("modules")).is_ok_and(|d| d.count() > 0)
    }

    /// A driver connected to this node.
    pub async fn connect(&self) -> reef::Cluster {
        reef::Cluster::connect_with_token(&self.address, &self.token())
            .await
            .expect("connecting to the node")
    }

    /// `host tenant add NAME FLAGS...` as the admin (quota flags, `--weight`),
    /// its token written to `dir/NAME.token`; that path.
    pub fn add_tenant(&self, name: &str, dir: &Path, flags: &[&str]) -> PathBuf {
        let output = dir.join(format!("{name}.token"));
        let mut args = vec!["tenant", "add", name, "--output", output.to_str().unwrap()];
        args.extend_from_slice(flags);
        let out = self.admin_cli(&args);
        assert!(
            out.status.success(),
            "host tenant add {name}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        output
    }

    /// A driver connected to this node as the tenant whose token is in `token_file`.
    pub async fn connect_as(&self, token_file: &Path) -> reef::Cluster {
        let options = reef::ConnectOptions::default()
            .token_file(token_file)
            .expect("reading the tenant's token file");
        reef::Cluster::connect_with(&self.address, options)
            .await
            .expect("connecting as a tenant")
    }

    /// Runs a `host` subcommand against this node (as tenant `default`).
    pub fn cli(&self, args: &[&str]) -> Output {
        self.cli_with(args, &self.token_file)
    }

    /// Runs a `host` subcommand against this node with the admin credential.
    pub fn admin_cli(&self, args: &[&str]) -> Output {
        self.cli_with(args, &self.admin_token_file())
    }

    /// Runs a `host` subcommand against this node presenting `token_file`.
    pub fn cli_with(&self, args: &[&str], token_file: &Path) -> Output {
        Command::new(host_bin())
            .args(args)
            .arg("--address")
            .arg(&self.address)
            .arg("--token-file")
            .arg(token_file)
            .output()
            .expect("running the host binary")
    }
}
