//! What the control plane keeps of a submitted job: a JSON record in its
//! KV store (namespace [`NAMESPACE`]), rewritten at every change of state,
//! so the jobs outlive the head that ran them.

use reef_proto as pb;
use serde::{Deserialize, Serialize};

/// The control-plane KV namespace of submitted jobs.
pub const NAMESPACE: &str = "reef.jobs";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum JobState {
    Pending,
    Running,
    Succeeded,
    Failed,
    Stopped,
}

impl JobState {
    pub fn name(self) -> &'static str {
        match self {
            JobState::Pending => "PENDING",
            JobState::Running => "RUNNING",
            JobState::Succeeded => "SUCCEEDED",
            JobState::Failed => "FAILED",
            JobState::Stopped => "STOPPED",
        }
    }

    pub fn is_terminal(self) -> bool {
        !matches!(self, JobState::Pending | JobState::Running)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRecord {
    pub submission_id: String,
    pub entrypoint: Vec<String>,
    pub working_dir: String,
    pub state: JobState,
    pub exit_code: Option<i32>,
    #[serde(default)]
    pub message: String,
    pub started_at_ms: u64,
    pub ended_at_ms: Option<u64>,
    /// The process (and process group) while it runs.
    pub pid: Option<u32>,
}

impl JobRecord {
    pub fn to_proto(&self, driver_jobs: Vec<u64>) -> pb::SubmittedJob {
        pb::SubmittedJob {
            submission_id: self.submission_id.clone(),
            entrypoint: self.entrypoint.clone(),
            working_dir: self.working_dir.clone(),
            state: self.state.name().into(),
            exit_code: self.exit_code.unwrap_or(0),
            has_exit_code: self.exit_code.is_some(),
            message: self.message.clone(),
            started_at_ms: self.started_at_ms,
            ended_at_ms: self.ended_at_ms.unwrap_or(0),
            pid: if self.state.is_terminal() {
                0
            } else {
                self.pid.unwrap_or(0)
            },
            driver_jobs,
        }
    }
}

/// Whether `id` may name a job: 1 to 64 of `A-Z a-z 0-9 _ . -`, not
/// starting with a dot (it names a directory).
pub fn valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && !id.starts_with('.')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        assert!(valid_id("job_1a2b"));
        assert!(valid_id("nightly-2026.12.03"));
        for bad in ["", ".hidden", "../x", "a/b", "with space", &"x".repeat(65)] {
            assert!(!valid_id(bad), "{bad}");
        }
    }

    #[test]
    fn states_roundtrip_as_ray_names() {
        let json = serde_json::to_string(&JobState::Succeeded).unwrap();
        assert_eq!(json, "\"SUCCEEDED\"");
        let back: JobState = serde_json::from_str(&json).unwrap();
        assert_eq!(back, JobState::Succeeded);
    }
}
