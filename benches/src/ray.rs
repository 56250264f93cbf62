//! Ray's side of `make bench-ray`: `benches/ray/bench_ray.py --serve`, a
//! Python process driving a local Ray instance, asked for one workload at a
//! time (one JSON line each way) so that its batches can alternate with
//! Reef's in the same run.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// The Python that has Ray: `$REEF_RAY_PYTHON`, else the venv that
/// `scripts/install-ray.sh` makes.
pub fn python() -> PathBuf {
    std::env::var_os("REEF_RAY_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target/bench-ray/venv/bin/python"))
}

/// The workspace's root directory.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("benches/ is inside the workspace")
        .to_path_buf()
}

/// A running `bench_ray.py --serve` and its Ray instance.
pub struct Ray {
    child: Child,
    stdin: ChildStdin,
    replies: Lines<BufReader<ChildStdout>>,
    log: PathBuf,
    /// Ray's version, as the process reports it.
    pub version: String,
    /// numpy's version.
    pub numpy: String,
}

impl Ray {
    /// Starts Ray on this machine with `cpus` CPUs and waits until it is up.
    /// Ray's own messages go to `log`.
    pub async fn start(cpus: usize, log: &Path) -> Result<Ray> {
        let python = python();
        if !python.exists() {
            bail!(
                "{} is missing: run scripts/install-ray.sh (make bench-ray does)",
                python.display()
            );
        }
        if let Some(dir) = log.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let stderr =
            std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let script = workspace().join("benches/ray/bench_ray.py");
        let mut child = Command::new(&python)
            .arg(&script)
            .args(["--serve", "--cpus", &cpus.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            // Not killed on drop: its stdin closing ends it, after `ray.shutdown()`
            // (a killed driver would leave Ray's processes behind).
            .spawn()
            .with_context(|| format!("starting {} {}", python.display(), script.display()))?;
        let stdin = child.stdin.take().context("no stdin")?;
        let stdout = child.stdout.take().context("no stdout")?;
        let mut ray = Ray {
            child,
            stdin,
            replies: BufReader::new(stdout).lines(),
            log: log.to_path_buf(),
            version: String::new(),
            numpy: String::new(),
        };
        let ready = tokio::time::timeout(Duration::from_secs(180), ray.reply())
            .await
            .context("Ray did not start within 180 s")??;
        ray.version = ready["ray"].as_str().unwrap_or("?").to_owned();
        ray.numpy = ready["numpy"].as_str().unwrap_or("?").to_owned();
        Ok(ray)
    }

    /// Runs workload `cmd` (a function of bench_ray.py) with `args` (a JSON
    /// object of its keyword arguments) and returns its reply.
    pub async fn run(&mut self, cmd: &str, args: Value) -> Result<Value> {
        let mut request = args;
        request["cmd"] = json!(cmd);
        let mut line = serde_json::to_string(&request)?;
        line.push('\n');
        self.stdin.write_all(line.as_bytes()).await?;
        self.stdin.flush().await?;
        let reply = self.reply().await?;
        if let Some(e) = reply.get("error") {
            bail!("Ray workload failed: {e} (see {})", self.log.display());
        }
        Ok(reply)
    }

    /// The durations of a reply's `key` (a list of seconds).
    pub async fn durations(&mut self, cmd: &str, args: Value, key: &str) -> Result<Vec<Duration>> {
        let reply = self.run(cmd, args).await?;
        let list = reply[key]
            .as_array()
            .with_context(|| format!("{cmd}: no `{key}` list in {reply}"))?;
        list.iter()
            .map(|v| {
                v.as_f64()
                    .map(Duration::from_secs_f64)
                    .with_context(|| format!("{cmd}: `{key}` holds {v}"))
            })
            .collect()
    }

    async fn reply(&mut self) -> Result<Value> {
        match self.replies.next_line().await? {
            Some(line) => Ok(serde_json::from_str(&line)
                .with_context(|| format!("a reply that is not JSON: {line}"))?),
            None => bail!("the Ray process exited (see {})", self.log.display()),
        }
    }

    /// Asks the process to shut Ray down and waits for it to exit.
    pub async fn stop(mut self) -> Result<()> {
        self.stdin.write_all(b"{\"cmd\": \"quit\"}\n").await?;
        self.stdin.flush().await?;
        let status = tokio::time::timeout(Duration::from_secs(60), self.child.wait())
            .await
            .context("Ray did not shut down within 60 s")??;
        if !status.success() {
            bail!(
                "the Ray process exited with {status} (see {})",
                self.log.display()
            );
        }
        Ok(())
    }
}
