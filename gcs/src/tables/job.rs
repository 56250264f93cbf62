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
    /// Where the driver can be reached (`host:port` or pid-ish tag).
    pub driver_address: String,
    /// Free-form description (entrypoint, user label).
    pub description: String,
    pub started_at_ms: u64,
    pub ended_at_ms: Option<u64>,
    pub state: JobState,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::on_both_stores;

    #[test]
    fn roundtrip() {
        on_both_stores(|store| {
            let table = JobTable::new(store);
            let mut job = JobRecord {
                job_id: 7,
                driver_address: "127.0.0.1:5555".into(),
                description: "examples/pi".into(),
                started_at_ms: 10,
                ended_at_ms: None,
                state: JobState::Running,
            };
            table.put(&job).unwrap();
            assert_eq!(table.require(&7).unwrap(), job);
            job.ended_at_ms = Some(20);
            job.state = JobState::Finished;
            table.put(&job).unwrap();
            assert_eq!(table.all().unwrap(), vec![job]);
            assert!(table.get(&8).unwrap().is_none());
        });
    }
}
