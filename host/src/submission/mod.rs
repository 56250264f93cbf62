//! Submitted jobs (`host job submit`): a command the head runs as its child
//! process, in a working directory, with `REEF_ADDRESS`, `REEF_TOKEN` and
//! `REEF_JOB_ID` set so a driver inside connects back and its sessions are
//! the job's. Output goes to bounded files under `<data-dir>/jobs/ID/`;
//! the record (state, exit code, times) to the control plane's KV store,
//! where it outlives the head. A job's processes are killed when the
//! head's process ends ([`spawn`]); a job still running when its head went away
//! is marked FAILED when the head comes back.

pub mod output;
pub mod record;
pub mod spawn;

use std::collections::{BTreeMap, HashMap};
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use reef_proto as pb;
use tokio::io::AsyncReadExt;
use tokio::sync::{mpsc, watch};

use crate::node::Node;
use output::OutputWriter;
use record::{JobRecord, JobState, NAMESPACE};

/// Bytes of output kept per job (the newest).
pub const OUTPUT_BYTES: u64 = 64 << 20;
/// How long a stopped job has between SIGTERM and SIGKILL.
pub const STOP_GRACE: Duration = Duration::from_secs(5);
/// Largest page of output one chunk carries.
const MAX_PAGE: usize = 1 << 20;
/// How often a follower looks for new output.
const FOLLOW_POLL: Duration = Duration::from_millis(100);
/// The environment variable that tells a driver which job it belongs to.
pub const JOB_ID_ENV: &str = "REEF_JOB_ID";

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("jobs run on the head node{}", .0.as_ref().map(|a| format!(": submit to {a}")).unwrap_or_default())]
    NotHead(Option<String>),
    #[error("no job `{0}`")]
    Unknown(String),
    #[error("a job `{0}` exists already")]
    Exists(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("control plane: {0}")]
    ControlPlane(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
}

impl From<JobError> for tonic::Status {
    fn from(e: JobError) -> Self {
        let message = e.to_string();
        match e {
            JobError::NotHead(_) => tonic::Status::failed_precondition(message),
            JobError::Unknown(_) => tonic::Status::not_found(message),
            JobError::Exists(_) => tonic::Status::already_exists(message),
            JobError::BadRequest(_) => tonic::Status::invalid_argument(message),
            JobError::ControlPlane(_) => tonic::Status::unavailable(message),
            JobError::Io { .. } => tonic::Status::internal(message),
        }
    }
}

fn cp(e: impl std::fmt::Display) -> JobError {
    JobError::ControlPlane(e.to_string())
}

/// A job whose process this head runs.
struct Running {
    pid: u32,
    /// Set when `stop` asked for it: its end is STOPPED, not FAILED.
    stopping: std::sync::atomic::AtomicBool,
    /// True once the process ended and its record is written.
    ended: watch::Receiver<bool>,
}

/// The head's submitted jobs.
pub struct Submissions {
    node: Arc<Node>,
    running: Mutex<HashMap<String, Arc<Running>>>,
}

impl Submissions {
    /// The jobs of `node`, one manager per node while something holds it
    /// (its `Node` service does; a dashboard asks for the same one).
    pub fn of(node: &Arc<Node>) -> Arc<Submissions> {
        static MANAGERS: Mutex<Vec<(String, Weak<Submissions>)>> = Mutex::new(Vec::new());
        let mut managers = MANAGERS.lock().unwrap();
        managers.retain(|(_, m)| m.strong_count() > 0);
        if let Some(found) = managers
            .iter()
            .find(|(id, _)| id == &node.id)
            .and_then(|(_, m)| m.upgrade())
        {
            return found;
        }
        let jobs = Self::start(node.clone());
        managers.push((node.id.clone(), Arc::downgrade(&jobs)));
        jobs
    }

    /// On the head, marks the jobs a previous head left running as FAILED
    /// once the control plane is reachable.
    fn start(node: Arc<Node>) -> Arc<Submissions> {
        let jobs = Arc::new(Submissions {
            node,
            running: Mutex::default(),
        });
        if jobs.node.config.head {
            let recovering = jobs.clone();
            tokio::spawn(async move {
                recovering.node.cluster.registered().await;
                if let Err(e) = recovering.recover().await {
                    tracing::warn!("recovering submitted jobs: {e}");
                }
            });
            let stopping = jobs.clone();
            tokio::spawn(async move {
                stopping.node.stopping.cancelled().await;
                stopping.terminate_all();
            });
        }
        jobs
    }

    fn head(&self) -> Result<Arc<dyn reef_gcs::ControlPlane>, JobError> {
        if !self.node.config.head {
            return Err(JobError::NotHead(self.node.config.head_address.clone()));
        }
        self.node.cluster.gcs().map_err(cp)
    }

    fn dir(&self, id: &str) -> PathBuf {
        self.node.config.data_dir.join("jobs").join(id)
    }

    async fn save(&self, record: &JobRecord) -> Result<(), JobError> {
        let json = serde_json::to_vec(record).expect("a job record serializes");
        self.head()?
            .kv_put(NAMESPACE, &record.submission_id, json.into(), true)
            .await
            .map_err(cp)?;
        Ok(())
    }

    async fn load(&self, id: &str) -> Result<JobRecord, JobError> {
        if !record::valid_id(id) {
            return Err(JobError::Unknown(id.to_string()));
        }
        let bytes = self
            .head()?
            .kv_get(NAMESPACE, id)
            .await
            .map_err(cp)?
            .ok_or_else(|| JobError::Unknown(id.to_string()))?;
        serde_json::from_slice(&bytes)
            .map_err(|e| JobError::ControlPlane(format!("job `{id}` record: {e}")))
    }

    /// The driver sessions (control-plane job ids) each submitted job opened.
    async fn driver_jobs(&self) -> Result<BTreeMap<String, Vec<u64>>, JobError> {
        let mut by_submission: BTreeMap<String, Vec<u64>> = BTreeMap::new();
        for job in self.head()?.list_jobs().await.map_err(cp)? {
            if !job.submission_id.is_empty() {
                by_submission
                    .entry(job.submission_id)
                    .or_default()
                    .push(job.job_id);
            }
        }
        Ok(by_submission)
    }

    pub async fn get(&self, id: &str) -> Result<pb::SubmittedJob, JobError> {
        let record = self.load(id).await?;
        let mut drivers = self.driver_jobs().await?;
        Ok(record.to_proto(drivers.remove(id).unwrap_or_default()))
    }

    /// Every submitted job, oldest first.
    pub async fn list(&self) -> Result<Vec<pb::SubmittedJob>, JobError> {
        let gcs = self.head()?;
        let mut records = Vec::new();
        for key in gcs.kv_keys(NAMESPACE, "").await.map_err(cp)? {
            match self.load(&key).await {
                Ok(record) => records.push(record),
                Err(JobError::Unknown(_)) => {} // deleted meanwhile
                Err(e) => return Err(e),
            }
        }
        records.sort_by(|a, b| {
            (a.started_at_ms, &a.submission_id).cmp(&(b.started_at_ms, &b.submission_id))
        });
        let mut drivers = self.driver_jobs().await?;
        Ok(records
            .into_iter()
            .map(|r| {
                let ids = drivers.remove(&r.submission_id).unwrap_or_default();
                r.to_proto(ids)
            })
            .collect())
    }

    /// Starts `request`'s command; answers once it runs (or failed to start).
    /// Its drivers present `token`: the credential the submission came with.
    pub async fn submit(
        self: &Arc<Self>,
        request: pb::SubmitJobRequest,
        token: &str,
    ) -> Result<pb::SubmittedJob, JobError> {
        let gcs = self.head()?;
        let Some(program) = request.entrypoint.first().cloned() else {
            return Err(JobError::BadRequest(
                "no command: give it after `--`".into(),
            ));
        };
        let id = if request.submission_id.is_empty() {
            let random = reef_proto::auth::generate_token().map_err(|source| JobError::Io {
                what: "reading random bytes".into(),
                source,
            })?;
            format!("job_{}", &random[..16])
        } else if record::valid_id(&request.submission_id) {
            request.submission_id.clone()
        } else {
            return Err(JobError::BadRequest(format!(
                "`{}` is not a job id: 1 to 64 of A-Z a-z 0-9 _ . - (not starting with a dot)",
                request.submission_id
            )));
        };
        let working_dir = if request.working_dir.is_empty() {
            self.node.config.data_dir.clone()
        } else {
            PathBuf::from(&request.working_dir)
        };
        if !working_dir.is_dir() {
            return Err(JobError::BadRequest(format!(
                "the working directory {} is not a directory on the head",
                working_dir.display()
            )));
        }
        for key in request.env.keys() {
            if key.is_empty() || key.contains('=') || key.contains('\0') {
                return Err(JobError::BadRequest(format!(
                    "`{key}` is not an environment variable name"
                )));
            }
        }
        let mut record = JobRecord {
            submission_id: id.clone(),
            entrypoint: request.entrypoint.clone(),
            working_dir: working_dir.display().to_string(),
            state: JobState::Pending,
            exit_code: None,
            message: String::new(),
            started_at_ms: reef_gcs::now_millis(),
            ended_at_ms: None,
            pid: None,
        };
        let json = serde_json::to_vec(&record).expect("a job record serializes");
        if !gcs
            .kv_put(NAMESPACE, &id, json.into(), false)
            .await
            .map_err(cp)?
        {
            return Err(JobError::Exists(id));
        }
        let mut output = match OutputWriter::create(&self.dir(&id), OUTPUT_BYTES) {
            Ok(output) => output,
            Err(source) => {
                return self
                    .fail_to_start(record, format!("creating its output directory: {source}"))
                    .await
            }
        };
        let mut command = tokio::process::Command::new(&program);
        command
            .args(&request.entrypoint[1..])
            .current_dir(&working_dir)
            .envs(&request.env)
            .env("REEF_ADDRESS", self.node.address())
            .env("REEF_TOKEN", token)
            .env(JOB_ID_ENV, &id)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            // Its own process group: `stop` signals the command and every
            // process it started.
            .process_group(0);
        let mut child = match spawn::spawn(command).await {
            Ok(child) => child,
            Err(e) => {
                return self
                    .fail_to_start(record, format!("cannot start `{program}`: {e}"))
                    .await
            }
        };
        let pid = child.id().unwrap_or(0);
        let guard = match spawn::Guard::start(pid).await {
            Ok(guard) => Some(guard),
            Err(e) => {
                tracing::warn!(job = %id, "no guard for the job's process group: {e}");
                None
            }
        };
        record.state = JobState::Running;
        record.pid = Some(pid);
        let (ended_tx, ended) = watch::channel(false);
        let running = Arc::new(Running {
            pid,
            stopping: Default::default(),
            ended,
        });
        self.running
            .lock()
            .unwrap()
            .insert(id.clone(), running.clone());
        tracing::info!(job = %id, pid, command = ?request.entrypoint, "job started");
        // Both streams into one writer, chunk by chunk, in arrival order.
        let (tx, mut rx) = mpsc::channel::<Vec<u8>>(64);
        let pipes: Vec<Box<dyn tokio::io::AsyncRead + Send + Unpin>> = vec![
            Box::new(child.stdout.take().expect("stdout is piped")),
            Box::new(child.stderr.take().expect("stderr is piped")),
        ];
        for mut pipe in pipes {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 << 10];
                while let Ok(n) = pipe.read(&mut buf).await {
                    if n == 0 || tx.send(buf[..n].to_vec()).await.is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        let writer = tokio::spawn(async move {
            while let Some(bytes) = rx.recv().await {
                if let Err(e) = output.write(&bytes).await {
                    tracing::warn!("writing a job's output: {e}");
                }
                if rx.is_empty() {
                    let _ = output.flush().await;
                }
            }
            let _ = output.flush().await;
        });
        let reply = record.to_proto(Vec::new());
        self.save(&record).await?;
        let this = self.clone();
        tokio::spawn(async move {
            let status = child.wait().await;
            // The output ends when every process holding the pipes has.
            let _ = writer.await;
            if let Some(guard) = guard {
                guard.release().await;
            }
            record.ended_at_ms = Some(reef_gcs::now_millis());
            let stopped = running.stopping.load(std::sync::atomic::Ordering::SeqCst);
            match status {
                Ok(status) => {
                    record.exit_code = status.code();
                    record.state = match (stopped, status.success()) {
                        (true, _) => JobState::Stopped,
                        (false, true) => JobState::Succeeded,
                        (false, false) => JobState::Failed,
                    };
                    record.message = match (status.code(), status.signal()) {
                        _ if stopped => "stopped by request".into(),
                        (Some(0), _) => String::new(),
                        (Some(code), _) => format!("the command exited with code {code}"),
                        (None, Some(signal)) => {
                            format!("the command was killed by signal {signal}")
                        }
                        (None, None) => "the command ended".into(),
                    };
                }
                Err(e) => {
                    record.state = JobState::Failed;
                    record.message = format!("waiting for the command: {e}");
                }
            }
            tracing::info!(job = %record.submission_id, state = record.state.name(), "job ended");
            if let Err(e) = this.save(&record).await {
                tracing::warn!(job = %record.submission_id, "recording the job's end: {e}");
            }
            this.running.lock().unwrap().remove(&record.submission_id);
            let _ = ended_tx.send(true);
        });
        Ok(reply)
    }

    async fn fail_to_start(
        &self,
        mut record: JobRecord,
        message: String,
    ) -> Result<pb::SubmittedJob, JobError> {
        record.state = JobState::Failed;
        record.message = message;
        record.ended_at_ms = Some(reef_gcs::now_millis());
        self.save(&record).await?;
        Ok(record.to_proto(Vec::new()))
    }

    /// SIGTERM to the job's process group, SIGKILL after [`STOP_GRACE`];
    /// answers once it ended (STOPPED), or at once for a job that is over.
    pub async fn stop(&self, id: &str) -> Result<pb::SubmittedJob, JobError> {
        self.load(id).await?;
        let running = self.running.lock().unwrap().get(id).cloned();
        let Some(running) = running else {
            return self.get(id).await;
        };
        running
            .stopping
            .store(true, std::sync::atomic::Ordering::SeqCst);
        signal_group(running.pid, libc::SIGTERM);
        let mut ended = running.ended.clone();
        let gone = tokio::time::timeout(STOP_GRACE, ended.wait_for(|e| *e))
            .await
            .is_ok();
        if !gone {
            tracing::info!(job = %id, "still running after SIGTERM: SIGKILL");
            signal_group(running.pid, libc::SIGKILL);
            let _ = ended.wait_for(|e| *e).await;
        }
        self.get(id).await
    }

    /// The job's output from `request.offset`, in pages; with `follow`,
    /// until the job ended and its output is read.
    pub async fn read_logs(
        &self,
        request: pb::ReadJobLogsRequest,
    ) -> Result<crate::rpc::state::logs::ChunkStream, JobError> {
        self.load(&request.submission_id).await?;
        let dir = self.dir(&request.submission_id);
        let max = match request.max_bytes as usize {
            0 => MAX_PAGE,
            n => n.min(MAX_PAGE),
        };
        let ended = self
            .running
            .lock()
            .unwrap()
            .get(&request.submission_id)
            .map(|r| r.ended.clone());
        let node_id = self.node.id.clone();
        let follow = request.follow;
        let (tx, rx) = mpsc::channel(4);
        tokio::spawn(async move {
            let mut offset = request.offset;
            loop {
                // Whether the job is over: read before the page, so the last
                // output is in it.
                let over = ended.as_ref().is_none_or(|e| *e.borrow());
                let at = offset;
                let read = {
                    let dir = dir.clone();
                    tokio::task::spawn_blocking(move || output::read(&dir, at, max)).await
                };
                let page = match read {
                    Ok(Ok(page)) => page,
                    Ok(Err(e)) => {
                        let _ = tx
                            .send(Err(tonic::Status::internal(format!(
                                "reading the job's output: {e}"
                            ))))
                            .await;
                        return;
                    }
                    Err(_) => return,
                };
                let empty = page.bytes.is_empty();
                let eof = empty && (over || !follow);
                if !empty || page.skipped > 0 || eof {
                    offset = page.next_offset;
                    let chunk = pb::LogChunk {
                        lines: lines(&page.bytes),
                        next_offset: page.next_offset,
                        eof,
                        node_id: node_id.clone(),
                        skipped: page.skipped,
                    };
                    if tx.send(Ok(chunk)).await.is_err() || eof {
                        return;
                    }
                }
                if empty {
                    tokio::time::sleep(FOLLOW_POLL).await;
                }
            }
        });
        Ok(Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx)))
    }

    /// Records of jobs a previous head left PENDING or RUNNING: their
    /// process is not this head's, so they are FAILED.
    async fn recover(&self) -> Result<(), JobError> {
        let gcs = self.head()?;
        for key in gcs.kv_keys(NAMESPACE, "").await.map_err(cp)? {
            if self.running.lock().unwrap().contains_key(&key) {
                continue;
            }
            let Ok(mut record) = self.load(&key).await else {
                continue;
            };
            if record.state.is_terminal() {
                continue;
            }
            record.state = JobState::Failed;
            record.message =
                "the head stopped while the job ran; its process was lost with it".into();
            record.ended_at_ms = Some(reef_gcs::now_millis());
            tracing::info!(job = %key, "job lost with the previous head: FAILED");
            self.save(&record).await?;
        }
        Ok(())
    }

    /// The head is stopping: its jobs' processes are told to end.
    fn terminate_all(&self) {
        for running in self.running.lock().unwrap().values() {
            signal_group(running.pid, libc::SIGTERM);
        }
    }
}

/// Sends `signal` to process group `pgid` (a job's command leads its group).
fn signal_group(pgid: u32, signal: libc::c_int) {
    if pgid == 0 {
        return;
    }
    // SAFETY: kill(2) with a negative pid signals a process group; it reads
    // no memory of ours.
    unsafe {
        libc::kill(-(pgid as libc::pid_t), signal);
    }
}

/// Output bytes as log lines (a line cut by a page boundary continues in
/// the next page's first line).
fn lines(bytes: &[u8]) -> Vec<pb::LogLine> {
    if bytes.is_empty() {
        return Vec::new();
    }
    vec![pb::LogLine {
        stream: "output".into(),
        text: String::from_utf8_lossy(bytes).into_owned(),
    }]
}
