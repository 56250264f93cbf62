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

/// The finished jobs kept, each tenant's oldest first: a driver connecting
/// in a loop adds a record per session, so finished ones are bounded
/// (`retained_finished_jobs`), the tenant with the most losing its oldest
/// first, so one tenant's sessions never push another's history out.
#[derive(Debug, Default)]
pub struct FinishedJobs {
    by_tenant: std::collections::HashMap<String, std::collections::VecDeque<u64>>,
    count: usize,
}

impl FinishedJobs {
    /// The finished jobs among `records`, in id order.
    pub fn of(records: &[JobRecord]) -> Self {
        let mut finished: Vec<&JobRecord> = records
            .iter()
            .filter(|j| j.state == JobState::Finished)
            .collect();
        finished.sort_by_key(|j| j.job_id);
        let mut kept = FinishedJobs::default();
        for job in finished {
            kept.push(&job.tenant, job.job_id);
        }
        kept
    }

    pub fn push(&mut self, tenant: &str, job_id: u64) {
        self.by_tenant
            .entry(tenant.to_owned())
            .or_default()
            .push_back(job_id);
        self.count += 1;
    }

    /// The jobs to forget for at most `keep` to stay, the tenant with the
    /// most giving its oldest first.
    pub fn trim(&mut self, keep: usize) -> Vec<u64> {
        let mut gone = Vec::new();
        while self.count > keep {
            let Some((tenant, jobs)) = self.by_tenant.iter_mut().max_by_key(|(_, j)| j.len())
            else {
                break;
            };
            if let Some(id) = jobs.pop_front() {
                gone.push(id);
                self.count -= 1;
            }
            if jobs.is_empty() {
                let tenant = tenant.clone();
                self.by_tenant.remove(&tenant);
            }
        }
        gone
    }
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
    fn finished_jobs_past_the_bound_go_from_the_tenant_with_the_most() {
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
        let mut records = vec![
            job(1, "a", JobState::Finished),
            job(2, "a", JobState::Running),
        ];
        records.extend((10..20).map(|id| job(id, "b", JobState::Finished)));
        let mut kept = FinishedJobs::of(&records);
        assert_eq!(kept.trim(11), Vec::<u64>::new());
        assert_eq!(kept.trim(5), vec![10, 11, 12, 13, 14, 15]);
        kept.push("a", 30);
        // A and B hold 2 and 4: B's oldest go until they are even.
        assert_eq!(kept.trim(4), vec![16, 17]);
        assert_eq!(kept.count, 4);
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
