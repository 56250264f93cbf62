//! What guests printed: captured per task or actor call, kept for the last
//! `KEPT_LOGS` calls of this node, read by drivers with `logs`.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use crate::store::ObjectId;

/// How many finished calls keep their logs.
const KEPT_LOGS: usize = 10_000;

/// Captured output of a guest: stdout, stderr and `log` lines.
#[derive(Clone, Debug, Default)]
pub struct GuestLogs {
    pub stdout: String,
    pub stderr: String,
    pub log: Vec<String>,
}

/// Logs by the call's result id, the oldest dropped first.
#[derive(Default)]
pub struct LogStore {
    inner: Mutex<(HashMap<ObjectId, GuestLogs>, VecDeque<ObjectId>)>,
}

impl LogStore {
    pub fn put(&self, id: ObjectId, logs: GuestLogs) {
        let mut guard = self.inner.lock().unwrap();
        let (map, order) = &mut *guard;
        if map.insert(id, logs).is_none() {
            order.push_back(id);
        }
        while order.len() > KEPT_LOGS {
            if let Some(old) = order.pop_front() {
                map.remove(&old);
            }
        }
    }

    pub fn get(&self, id: ObjectId) -> Option<GuestLogs> {
        self.inner.lock().unwrap().0.get(&id).cloned()
    }
}
