//! Starting a Reef node as a child process: `host start` on a free port with
//! its own data directory, waited for until it prints its banner (it serves
//! from then on), stopped when dropped.
//!
//! The child is started with `--stop-on-stdin-close` and our end of its
//! stdin: dropping a [`RunningHost`] closes it and the node stops cleanly
//! (fails its tasks, removes its sockets); if this process dies, the
//! kernel closes the pipe and the node stops too, so no node outlives the
//! program (or test) that started it.
//!
//! ```no_run
//! # fn demo() -> Result<(), reef_launcher::LaunchError> {
//! let head = reef_launcher::Launch::head().args(["--num-cpus", "2"]).start()?;
//! let worker = reef_launcher::Launch::worker(&head).start()?;
//! println!("{} and {}, token {}", head.address, worker.address, head.token()?);
//! # Ok(()) }
//! ```

use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How long a dropped node may take to stop on its own before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// Why a node could not be started (or its token read).
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("{what}: {source}")]
    Io {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("starting {}: {source} (set REEF_HOST to the host binary)", binary.display())]
    Spawn {
        binary: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The process exited (or printed something else) before its banner.
    #[error("the node did not start:\n{log}")]
    NotStarted { log: String },
    #[error("{0}")]
    Token(String),
}

fn io(what: &'static str) -> impl FnOnce(std::io::Error) -> LaunchError {
    move |source| LaunchError::Io { what, source }
}

/// Where the `host` binary is: `$REEF_HOST`, beside this program (or up to two
/// directories above it, for `target/*/examples` and `target/*/deps`), else
/// `host` on `PATH`.
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

/// A free TCP port on 127.0.0.1 (free when asked: another process may take
/// it before the node binds it, which the node then reports).
pub fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// How to start one node: `host start [--head] --stop-on-stdin-close --port P
/// --data-dir D [args]`.
#[derive(Debug, Clone)]
pub struct Launch {
    binary: Option<PathBuf>,
    head: bool,
    port: Option<u16>,
    data_dir: Option<PathBuf>,
    temp_prefix: String,
    token_file: Option<PathBuf>,
    /// A worker's head's data directory (its node and admin credentials).
    head_dir: Option<PathBuf>,
    args: Vec<OsString>,
}

impl Launch {
    /// A head node (it runs the control plane); by default in a fresh
    /// temporary data directory removed when the node is dropped.
    pub fn head() -> Launch {
        Launch::new(true)
    }

    /// A node, `--head` or not (a worker then needs `--address` and a token
    /// among its arguments; [`Launch::worker`] adds them).
    pub fn new(head: bool) -> Launch {
        Launch {
            binary: None,
            head,
            port: None,
            data_dir: None,
            temp_prefix: "reef-node-".into(),
            token_file: None,
            head_dir: None,
            args: Vec::new(),
        }
    }

    /// A worker joining the cluster of `head`: its address and the node
    /// credential; drivers of the worker present the head's tenant token.
    pub fn worker(head: &RunningHost) -> Launch {
        let mut launch = Launch::new(false);
        launch.token_file = Some(head.token_file.clone());
        launch.head_dir = Some(head.head_dir.clone());
        launch
            .arg("--address")
            .arg(&head.address)
            .arg("--token-file")
            .arg(head.node_token_file())
    }

    /// The `host` binary to run (default: [`host_binary`]).
    pub fn binary(mut self, binary: impl Into<PathBuf>) -> Launch {
        self.binary = Some(binary.into());
        self
    }

    /// The port to listen on (default: a free one).
    pub fn port(mut self, port: u16) -> Launch {
        self.port = Some(port);
        self
    }

    /// A data directory owned by the caller: kept after the node stops (a
    /// node restarted on it finds its module cache).
    pub fn data_dir(mut self, dir: impl Into<PathBuf>) -> Launch {
        self.data_dir = Some(dir.into());
        self
    }

    /// The name prefix of the temporary data directory (when none is given).
    pub fn temp_prefix(mut self, prefix: &str) -> Launch {
        self.temp_prefix = prefix.to_string();
        self
    }

    /// One more `host start` argument.
    pub fn arg(mut self, arg: impl Into<OsString>) -> Launch {
        self.args.push(arg.into());
        self
    }

    /// More `host start` arguments.
    pub fn args<I, S>(mut self, args: I) -> Launch
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Starts the node and blocks until it prints its banner (it serves from
    /// then on); on failure, the error carries what the node logged.
    pub fn start(self) -> Result<RunningHost, LaunchError> {
        let temp = match &self.data_dir {
            Some(_) => None,
            None => Some(
                tempfile::Builder::new()
                    .prefix(&self.temp_prefix)
                    .tempdir()
                    .map_err(io("creating a data directory"))?,
            ),
        };
        let dir = match (&self.data_dir, &temp) {
            (Some(dir), _) => dir.clone(),
            (None, Some(temp)) => temp.path().to_owned(),
            (None, None) => unreachable!("a temporary directory was made above"),
        };
        let port = match self.port {
            Some(port) => port,
            None => free_port().map_err(io("finding a free port"))?,
        };
        // A file, not a pipe: a node must never block on a full pipe.
        let log = std::fs::File::create(dir.join("node.log"))
            .map_err(io("creating the node's log file"))?;
        let binary = self.binary.unwrap_or_else(host_binary);
        let mut child = Command::new(&binary)
            .arg("start")
            .args(self.head.then_some("--head"))
            // The node stops when this pipe closes: when we drop it, or die.
            .arg("--stop-on-stdin-close")
            .arg("--port")
            .arg(port.to_string())
            .arg("--data-dir")
            .arg(&dir)
            .args(&self.args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .map_err(|source| LaunchError::Spawn {
                binary: binary.clone(),
                source,
            })?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut banner = String::new();
        let read = BufReader::new(stdout).read_line(&mut banner);
        if read.is_err() || !banner.contains("listening on") {
            let _ = child.kill();
            let _ = child.wait();
            let log = std::fs::read_to_string(dir.join("node.log")).unwrap_or_default();
            return Err(LaunchError::NotStarted { log });
        }
        Ok(RunningHost {
            child,
            port,
            address: format!("127.0.0.1:{port}"),
            token_file: self.token_file.unwrap_or_else(|| dir.join("token")),
            head_dir: self.head_dir.unwrap_or_else(|| dir.clone()),
            dir,
            _temp: temp,
        })
    }
}

/// A started `host` process. Dropping it stops the node (and removes its
/// data directory when it was a temporary one).
#[derive(Debug)]
pub struct RunningHost {
    child: Child,
    pub port: u16,
    /// `127.0.0.1:<port>`.
    pub address: String,
    /// Its data directory (module cache, token, `node.log`).
    pub dir: PathBuf,
    /// The token file drivers present: tenant `default`'s, in the data
    /// directory of the node or of its head for a worker.
    pub token_file: PathBuf,
    /// The data directory of its head (its own for a head): where the node
    /// and admin credentials are.
    pub head_dir: PathBuf,
    _temp: Option<tempfile::TempDir>,
}

impl RunningHost {
    /// The token of tenant `default` (from [`RunningHost::token_file`]).
    pub fn token(&self) -> Result<String, LaunchError> {
        reef_proto::auth::read_token_file(&self.token_file).map_err(LaunchError::Token)
    }

    /// The node credential's file (cluster-internal services).
    pub fn node_token_file(&self) -> PathBuf {
        self.head_dir.join("node-token")
    }

    /// The admin credential's file (tenants, stopping nodes).
    pub fn admin_token_file(&self) -> PathBuf {
        self.head_dir.join("admin-token")
    }

    /// The node credential.
    pub fn node_token(&self) -> Result<String, LaunchError> {
        reef_proto::auth::read_token_file(&self.node_token_file()).map_err(LaunchError::Token)
    }

    /// The admin credential.
    pub fn admin_token(&self) -> Result<String, LaunchError> {
        reef_proto::auth::read_token_file(&self.admin_token_file()).map_err(LaunchError::Token)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the node logged so far (its stderr).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("node.log")).unwrap_or_default()
    }

    /// Kills the process at once (a node that dies without stopping) and reaps it.
    pub fn kill(&mut self) -> std::io::Result<()> {
        self.child.kill()?;
        self.child.wait().map(drop)
    }

    /// Waits up to `timeout` for the process to exit (after `host stop`, a
    /// closed stdin or a kill); `None` if it still runs.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for RunningHost {
    fn drop(&mut self) {
        // Closing its stdin stops the node cleanly: it fails its tasks and
        // removes its sockets. One that does not stop in time is killed.
        drop(self.child.stdin.take());
        if self.wait_exit(STOP_GRACE).is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
