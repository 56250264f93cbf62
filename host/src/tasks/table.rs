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

/// A task of this node that has not finished. Its driver holds it (see
/// `Tasks::drive`; a call handed to a guest thread holds it too, and may
/// outlive the driver of a stopped task) and moves it from state to state
/// without the table's lock or a lookup: each task took that lock three or
/// four times, on the guest threads as on the RPC thread (~1 µs of a
/// trivial task's CPU).
pub struct LiveTask {
    module: String,
    function: String,
    attempt: u32,
    tenant: TenantId,
    owner: Option<u64>,
    cancel: CancellationToken,
    /// Its function's metrics.
    series: Arc<TaskFn>,
    state: Mutex<TaskState>,
}

struct TaskState {
    label: &'static str,
    reason: Option<StopReason>,
    /// When it arrived, then when it started running.
    since: Instant,
    running: bool,
    /// Removed from the table: its run time was counted.
    finished: bool,
}

impl LiveTask {
    /// Stopped when the task is (`TaskTable::stop`).
    pub fn cancel(&self) -> &CancellationToken {
        &self.cancel
    }

    /// The state `host status` shows; "running" starts its run time. No
    /// effect once the task left the table (`TaskTable::finish`).
    pub fn set_state(&self, label: &'static str) {
        let mut t = self.state.lock().unwrap();
        if t.finished {
            return;
        }
        t.label = label;
        let running = label == "running";
        if running != t.running {
            let now = Instant::now();
            if running {
                self.series.started(now - t.since);
            } else {
                self.series.stopped(now - t.since);
            }
            (t.running, t.since) = (running, now);
        }
    }

    fn stop(&self, reason: StopReason) {
        self.state.lock().unwrap().reason.get_or_insert(reason);
        self.cancel.cancel();
    }
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
    live: Mutex<FastMap<ObjectId, Arc<LiveTask>>>,
}

impl TaskTable {
    /// Adds a task, waiting for its arguments; its handle for its driver.
    pub fn insert(&self, attempt: &Attempt, series: Arc<TaskFn>) -> Arc<LiveTask> {
        let spec = &attempt.spec;
        let task = Arc::new(LiveTask {
            module: spec.module.clone(),
            function: spec.function.clone(),
            attempt: attempt.number,
            tenant: spec.tenant.clone(),
            owner: spec.owner,
            cancel: CancellationToken::new(),
            series,
            state: Mutex::new(TaskState {
                label: "waiting-for-args",
                reason: None,
                since: Instant::now(),
                running: false,
                finished: false,
            }),
        });
        self.live
            .lock()
            .unwrap()
            .insert(spec.return_id, task.clone());
        task
    }

    /// Whether a task with this return id waits or runs here.
    pub fn contains(&self, id: ObjectId) -> bool {
        self.live.lock().unwrap().contains_key(&id)
    }

    /// Removes a finished task; why it was stopped, if it was.
    pub fn finish(&self, id: ObjectId) -> Option<StopReason> {
        let t = self.live.lock().unwrap().remove(&id)?;
        let mut state = t.state.lock().unwrap();
        state.finished = true;
        // A stopped task's call may still be running on a guest thread: its
        // later state changes must not count it stopped a second time.
        if std::mem::take(&mut state.running) {
            t.series.stopped(state.since.elapsed());
        }
        state.reason
    }

    /// Stops a task; false when no such task is pending or running.
    pub fn stop(&self, id: ObjectId, reason: StopReason) -> bool {
        let Some(t) = self.live.lock().unwrap().get(&id).cloned() else {
            return false;
        };
        t.stop(reason);
        true
    }

    /// Stops every task of a driver (or all tasks when `owner` is None).
    pub fn stop_all(&self, owner: Option<u64>, reason: StopReason) {
        let stopped: Vec<_> = self
            .live
            .lock()
            .unwrap()
            .values()
            .filter(|t| owner.is_none() || t.owner == owner)
            .cloned()
            .collect();
        for t in stopped {
            t.stop(reason);
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
                state: t.state.lock().unwrap().label,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Metrics;
    use crate::spec::TaskSpec;

    /// Tasks running, summed over every series (an unknown module's
    /// series shares its labels with the one past the cap).
    fn running_gauge(metrics: &Metrics) -> i64 {
        metrics
            .encode()
            .lines()
            .filter(|l| l.starts_with("reef_tasks_running{"))
            .map(|l| l.rsplit(' ').next().unwrap().parse::<i64>().unwrap())
            .sum()
    }

    #[test]
    fn a_stopped_task_still_running_is_counted_stopped_once() {
        let metrics = Metrics::new();
        let table = TaskTable::default();
        let spec = TaskSpec::for_test(7, vec![]);
        let task = table.insert(&Attempt { spec, number: 1 }, metrics.task(None, "m", "f"));
        task.set_state("running");
        assert_eq!(running_gauge(&metrics), 1);
        assert!(table.stop(7, StopReason::Cancelled));
        assert!(matches!(table.finish(7), Some(StopReason::Cancelled)));
        // The call, handed to a guest thread, ends after its driver did.
        task.set_state("finishing");
        assert_eq!(running_gauge(&metrics), 0);
        assert!(!table.contains(7) && table.is_empty());
    }
}
