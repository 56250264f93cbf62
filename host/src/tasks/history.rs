//! The tasks this node ran to the end, newest last: a bounded history for
//! the state API (`host list tasks`), every attempt its own row.

use std::collections::VecDeque;
use std::sync::Mutex;

use reef_core::TenantId;

use crate::error::{ErrorCode, ReefError};
use crate::store::ObjectId;

/// Finished attempts kept per node (about 300 bytes each).
pub const KEPT_TASKS: usize = 10_000;
/// Error messages are kept up to this many bytes.
const MESSAGE_BYTES: usize = 1024;

#[derive(Clone, Debug)]
pub struct Finished {
    pub return_id: ObjectId,
    pub module: String,
    pub function: String,
    pub attempt: u32,
    pub tenant: TenantId,
    /// `None`: it succeeded.
    pub error: Option<(ErrorCode, String)>,
    /// Unix microseconds: when the attempt started (waiting for its
    /// arguments and resources), began to run (0: it never did), ended.
    pub started_at_us: u64,
    pub running_at_us: u64,
    pub ended_at_us: u64,
}

#[derive(Default)]
pub struct History {
    kept: Mutex<VecDeque<Finished>>,
}

impl History {
    pub fn record(&self, mut done: Finished) {
        if let Some((_, message)) = &mut done.error {
            if message.len() > MESSAGE_BYTES {
                let mut cut = MESSAGE_BYTES;
                while !message.is_char_boundary(cut) {
                    cut -= 1;
                }
                message.truncate(cut);
                message.push_str(" ...");
            }
        }
        let mut kept = self.kept.lock().unwrap();
        if kept.len() == KEPT_TASKS {
            kept.pop_front();
        }
        kept.push_back(done);
    }

    pub fn rows(&self) -> Vec<Finished> {
        self.kept.lock().unwrap().iter().cloned().collect()
    }
}

/// Now, in unix microseconds (as cheap as the milliseconds: one clock read).
pub fn now_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// What a failed attempt's row says.
pub fn error_of(e: &ReefError) -> (ErrorCode, String) {
    (e.code, e.message.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_attempts_only() {
        let h = History::default();
        for i in 0..(KEPT_TASKS as u64 + 5) {
            h.record(Finished {
                return_id: i,
                module: "m".into(),
                function: "f".into(),
                attempt: 1,
                tenant: TenantId::default(),
                error: Some((ErrorCode::GuestError, "x".repeat(5000))),
                started_at_us: 0,
                running_at_us: 0,
                ended_at_us: 0,
            });
        }
        let rows = h.rows();
        assert_eq!(rows.len(), KEPT_TASKS);
        assert_eq!(rows[0].return_id, 5);
        assert!(rows[0].error.as_ref().unwrap().1.len() < 1100);
    }
}
