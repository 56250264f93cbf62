//! Jobs: one per driver session.

use serde::{Deserialize, Serialize};

use super::{id_key, Record, Table};

/// Whether a job's driver is still attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum JobState {
    Running,
    Finished,
}

/// What the control plane records about a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRecord {
    pub job_id: u64,
    /// Where the driver connected from: its `host:port`, or for a driver on
    /// the node's Unix socket `unix:pid <pid>`.
    pub driver_address: String,
    /// The node the driver is connected to.
    #[serde(default)]
    pub node_id: String,
    /// Free-form description (entrypoint, user label).
    pub description: String,
    pub started_at_ms: u64,
    pub ended_at_ms: Option<u64>,
    pub state: JobState,
    /// The submitted job (`host job submit`) whose process this driver is.
    #[serde(default)]
    pub submission_id: String,
    /// Whose driver session it is ("" for the default tenant; records
    /// written before tenants read as the default's).
    #[serde(default)]
    pub tenant: String,
}

impl Record for JobRecord {
    const TABLE: &'static str = "jobs";
    const WHAT: &'static str = "job";
    type Key = u64;

    fn encode_key(key: &u64) -> Vec<u8> {
        id_key(*key)
    }

    fn storage_key(&self) -> Vec<u8> {
        id_key(self.job_id)
    }
}

/// Jobs keyed by job id.
pub type JobTable = Table<JobRecord>;

/// The finished jobs among `records`, each tenant's in id order: what the
/// control plane keeps of them is bounded (`retained_finished_jobs`), since
/// a driver connecting in a loop adds a record per session.
pub fn finished_jobs(records: &[JobRecord]) -> crate::retained::Retained {
    let mut finished: Vec<&JobRecord> = records
        .iter()
        .filter(|j| j.state == JobState::Finished)
        .collect();
    finished.sort_by_key(|j| j.job_id);
    let mut kept = crate::retained::Retained::default();
    for job in finished {
        kept.push(&job.tenant, job.job_id);
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::file_store;

    #[test]
    fn roundtrip() {
        let (_dir, store) = file_store();
        let table = JobTable::new(store);
        let mut job = JobRecord {
            job_id: 7,
            driver_address: "127.0.0.1:5555".into(),
            node_id: "n1".into(),
            description: "examples/pi".into(),
            started_at_ms: 10,
            ended_at_ms: None,
            state: JobState::Running,
            submission_id: String::new(),
            tenant: "team-a".into(),
        };
        table.put(&job).unwrap();
        assert_eq!(table.require(&7).unwrap(), job);
        job.ended_at_ms = Some(20);
        job.state = JobState::Finished;
        table.put(&job).unwrap();
        assert_eq!(table.all().unwrap(), vec![job]);
        assert!(table.get(&8).unwrap().is_none());
    }

    #[test]
    fn only_finished_jobs_are_retained_and_in_id_order() {
        let job = |job_id, tenant: &str, state| JobRecord {
            job_id,
            driver_address: String::new(),
            node_id: String::new(),
            description: String::new(),
            started_at_ms: 0,
            ended_at_ms: None,
            state,
            submission_id: String::new(),
            tenant: tenant.into(),
        };
        let records = vec![
            job(5, "a", JobState::Finished),
            job(2, "a", JobState::Running),
            job(3, "a", JobState::Finished),
        ];
        let mut kept = finished_jobs(&records);
        assert_eq!(kept.len(), 2);
        assert_eq!(kept.trim(1), vec![3]);
    }

    #[test]
    fn records_written_before_node_ids_still_read() {
        let old = br#"{"job_id":3,"driver_address":"127.0.0.1","description":"d",
            "started_at_ms":1,"ended_at_ms":null,"state":"Running"}"#;
        let (_dir, store) = file_store();
        store.put(JobRecord::TABLE, &id_key(3), old).unwrap();
        let job = JobTable::new(store).require(&3).unwrap();
        assert_eq!(job.node_id, "");
        assert_eq!(job.state, JobState::Running);
    }
}
