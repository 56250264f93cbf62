//! Modules, jobs and KV: cold paths written through to durable storage (one
//! synchronous write each, on the blocking pool, before the call returns).

use bytes::Bytes;
use reef_proto::{EndJobRequest, ErrorCode, JobInfo, KvPutRequest, StartJobRequest};
use sha2::{Digest, Sha256};
use tonic::{Code, Status};

use super::Inner;
use crate::clock::now_millis;
use crate::status::{bad_argument, internal, reef_status};
use crate::tables::{Counter, JobRecord, JobState};

/// Storage table of module bytes, keyed by the lowercase hex sha256.
pub const MODULE_BLOB_TABLE: &str = "module_blobs";

/// Runs a blocking storage call on the blocking pool.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> crate::Result<T> + Send + 'static,
) -> Result<T, Status> {
    Ok(tokio::task::spawn_blocking(f).await.map_err(internal)??)
}

fn check_hash(hash: &str) -> Result<String, Status> {
    if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad_argument(format!(
            "module hash `{hash}` is not a hex sha256 (64 hex digits)"
        )));
    }
    Ok(hash.to_ascii_lowercase())
}

fn job_info(job: JobRecord) -> JobInfo {
    JobInfo {
        job_id: job.job_id,
        driver_address: job.driver_address,
        description: job.description,
        node_id: job.node_id,
        started_at_ms: job.started_at_ms,
        ended_at_ms: job.ended_at_ms.unwrap_or(0),
        submission_id: job.submission_id,
        tenant: job.tenant,
    }
}

/// `ms`, or now when it is 0 (the caller did not say).
fn or_now(ms: u64) -> u64 {
    if ms == 0 {
        now_millis()
    } else {
        ms
    }
}

impl Inner {
    /// Stores a module's bytes under its hash, after checking that the hash
    /// is the sha256 of the bytes. Storing a known module again is a no-op.
    pub(crate) async fn put_module(&self, hash: &str, wasm: Bytes) -> Result<(), Status> {
        let hash = check_hash(hash)?;
        let actual = hex::encode(Sha256::digest(&wasm));
        if actual != hash {
            return Err(bad_argument(format!(
                "module hash {hash} does not match its bytes (sha256 {actual}, {} bytes)",
                wasm.len()
            )));
        }
        let store = self.store.clone();
        blocking(move || {
            if store.get(MODULE_BLOB_TABLE, hash.as_bytes())?.is_none() {
                store.put(MODULE_BLOB_TABLE, hash.as_bytes(), &wasm)?;
                tracing::info!(%hash, bytes = wasm.len(), "module stored");
            }
            Ok(())
        })
        .await
    }

    pub(crate) async fn get_module(&self, hash: &str) -> Result<Bytes, Status> {
        let key = check_hash(hash)?;
        let store = self.store.clone();
        let found = blocking(move || store.get(MODULE_BLOB_TABLE, key.as_bytes())).await?;
        found.map(Bytes::from).ok_or_else(|| {
            reef_status(
                Code::NotFound,
                ErrorCode::UnknownModule,
                format!("module {hash} was never registered with the control plane"),
            )
        })
    }

    /// Records a job; its id is unique across restarts (from 1).
    pub(crate) async fn start_job(&self, req: StartJobRequest) -> Result<u64, Status> {
        let (counters, jobs) = (self.counters.clone(), self.jobs.clone());
        blocking(move || {
            let job_id = counters.next(Counter::Job)?;
            let record = JobRecord {
                job_id,
                driver_address: req.driver_address,
                node_id: req.node_id,
                description: req.description,
                started_at_ms: or_now(req.started_at_ms),
                ended_at_ms: None,
                state: JobState::Running,
                submission_id: req.submission_id,
                tenant: req.tenant,
            };
            jobs.put(&record)?;
            tracing::info!(job_id, driver = %record.driver_address, node = %record.node_id, "job started");
            Ok(job_id)
        })
        .await
    }

    /// Marks a job finished (idempotent: the first end time stays).
    /// Past `retained_finished_jobs`, the oldest finished record of the
    /// tenant with the most goes.
    pub(crate) async fn end_job(&self, req: EndJobRequest) -> Result<(), Status> {
        let (jobs, finished) = (self.jobs.clone(), self.finished_jobs.clone());
        let keep = self.config.retained_finished_jobs;
        blocking(move || {
            let mut job = jobs.require(&req.job_id)?;
            if job.state != JobState::Finished {
                job.state = JobState::Finished;
                job.ended_at_ms = Some(or_now(req.ended_at_ms));
                jobs.put(&job)?;
                tracing::info!(job_id = req.job_id, "job finished");
                let gone = {
                    let mut finished = finished.lock().unwrap();
                    finished.push(&job.tenant, job.job_id);
                    finished.trim(keep)
                };
                for id in gone {
                    jobs.delete(&id)?;
                }
            }
            Ok(())
        })
        .await
    }

    /// Every job ever recorded, by id.
    pub(crate) async fn list_jobs(&self) -> Result<Vec<JobInfo>, Status> {
        let jobs = self.jobs.clone();
        let all = blocking(move || jobs.all()).await?;
        Ok(all.into_iter().map(job_info).collect())
    }

    /// Returns whether the value is stored now (false: the key existed and
    /// `overwrite` was false).
    pub(crate) async fn kv_put(&self, req: KvPutRequest) -> Result<bool, Status> {
        let kv = self.kv.clone();
        blocking(move || {
            // `Kv::put` answers "newly added"; the caller asks "stored now".
            let added = kv.put(&req.ns, req.key.as_bytes(), &req.value, req.overwrite)?;
            Ok(added || req.overwrite)
        })
        .await
    }

    pub(crate) async fn kv_get(&self, ns: String, key: String) -> Result<Option<Bytes>, Status> {
        let kv = self.kv.clone();
        let value = blocking(move || kv.get(&ns, key.as_bytes())).await?;
        Ok(value.map(Bytes::from))
    }

    pub(crate) async fn kv_delete(&self, ns: String, key: String) -> Result<bool, Status> {
        let kv = self.kv.clone();
        blocking(move || kv.delete(&ns, key.as_bytes())).await
    }

    pub(crate) async fn kv_keys(&self, ns: String, prefix: String) -> Result<Vec<String>, Status> {
        let kv = self.kv.clone();
        let keys = blocking(move || kv.keys(&ns, prefix.as_bytes())).await?;
        Ok(keys
            .into_iter()
            .map(|k| String::from_utf8_lossy(&k).into_owned())
            .collect())
    }
}
