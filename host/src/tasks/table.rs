//! The tasks of this node that have not finished: their state for `host
//! status`, and how to stop them.

use crate::fastmap::FastMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use reef_core::TenantId;
use tokio_util::sync::CancellationToken;

use crate::error::{ErrorCode, ReefError};
use crate::metrics::TaskFn;
use crate::placement::group_removed;
use crate::spec::Attempt;
use crate::store::ObjectId;

/// Why a task was stopped before it finished.
#[derive(Clone, Copy, Debug)]
pub enum StopReason {
    Cancelled,
    OwnerDied,
    NodeStopping,
    /// The placement group the task ran in was removed.
    GroupRemoved(u64),
}

impl StopReason {
    pub fn error(self) -> ReefError {
        match self {
            StopReason::Cancelled => ReefError::new(ErrorCode::Cancelled, "the task was cancelled"),
            StopReason::OwnerDied => ReefError::new(
                ErrorCode::OwnerDied,
                "the driver that submitted the task disconnected",
            ),
            StopReason::NodeStopping => {
                ReefError::new(ErrorCode::NodeStopping, "the node is stopping")
            }
            StopReason::GroupRemoved(group) => group_removed(group),
        }
    }
}

struct LiveTask {
    module: String,
    function: String,
    attempt: u32,
    state: &'static str,
    tenant: TenantId,
    owner: Option<u64>,
    cancel: CancellationToken,
    reason: Option<StopReason>,
    /// Its function's metrics; when it arrived, then when it started running.
    series: Arc<TaskFn>,
    since: Instant,
    running: bool,
}

/// A summary row for `host status`.
pub struct TaskRow {
    pub return_id: ObjectId,
    pub module: String,
    pub function: String,
    pub state: &'static str,
    /// 1: the first attempt; more after retries.
    pub attempt: u32,
    pub tenant: TenantId,
}

#[derive(Default)]
pub struct TaskTable {
    live: Mutex<FastMap<ObjectId, LiveTask>>,
}

impl TaskTable {
    pub fn insert(&self, attempt: &Attempt, series: Arc<TaskFn>) -> CancellationToken {
        let cancel = CancellationToken::new();
        let spec = &attempt.spec;
        self.live.lock().unwrap().insert(
            spec.return_id,
            LiveTask {
                module: spec.module.clone(),
                function: spec.function.clone(),
                attempt: attempt.number,
                state: "waiting-for-args",
                tenant: spec.tenant.clone(),
                owner: spec.owner,
                cancel: cancel.clone(),
                reason: None,
                series,
                since: Instant::now(),
                running: false,
            },
        );
        cancel
    }

    pub fn set_state(&self, id: ObjectId, state: &'static str) {
        if let Some(t) = self.live.lock().unwrap().get_mut(&id) {
            t.state = state;
            let running = state == "running";
            if running != t.running {
                let now = Instant::now();
                if running {
                    t.series.started(now - t.since);
                } else {
                    t.series.stopped(now - t.since);
                }
                (t.running, t.since) = (running, now);
            }
        }
    }

    /// Whether a task with this return id waits or runs here.
    pub fn contains(&self, id: ObjectId) -> bool {
        self.live.lock().unwrap().contains_key(&id)
    }

    /// Removes a finished task; why it was stopped, if it was.
    pub fn finish(&self, id: ObjectId) -> Option<StopReason> {
        let t = self.live.lock().unwrap().remove(&id)?;
        if t.running {
            t.series.stopped(t.since.elapsed());
        }
        t.reason
    }

    /// Stops a task; false when no such task is pending or running.
    pub fn stop(&self, id: ObjectId, reason: StopReason) -> bool {
        match self.live.lock().unwrap().get_mut(&id) {
            Some(t) => {
                t.reason.get_or_insert(reason);
                t.cancel.cancel();
                true
            }
            None => false,
        }
    }

    /// Stops every task of a driver (or all tasks when `owner` is None).
    pub fn stop_all(&self, owner: Option<u64>, reason: StopReason) {
        for t in self.live.lock().unwrap().values_mut() {
            if owner.is_none() || t.owner == owner {
                t.reason.get_or_insert(reason);
                t.cancel.cancel();
            }
        }
    }

    pub fn rows(&self) -> Vec<TaskRow> {
        let mut rows: Vec<_> = self
            .live
            .lock()
            .unwrap()
            .iter()
            .map(|(id, t)| TaskRow {
                return_id: *id,
                module: t.module.clone(),
                function: t.function.clone(),
                state: t.state,
                attempt: t.attempt,
                tenant: t.tenant.clone(),
            })
            .collect();
        rows.sort_by_key(|r| r.return_id);
        rows
    }

    pub fn len(&self) -> usize {
        self.live.lock().unwrap().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
