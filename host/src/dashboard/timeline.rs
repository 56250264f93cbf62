//! The timeline of recent tasks as Chrome trace events (the format Perfetto
//! and `chrome://tracing` open): one process per node, one thread per lane
//! of tasks that ran at the same time on it, one complete event (`"X"`) per
//! finished attempt.

use std::collections::BTreeMap;

use reef_proto as pb;
use serde_json::{json, Value};

/// Events in one timeline: the most recently ended attempts.
pub const MAX_EVENTS: usize = 2_000;

/// The trace of the finished attempts among `tasks`.
pub fn trace(tasks: &[pb::TaskInfo]) -> Value {
    let mut done: Vec<&pb::TaskInfo> = tasks
        .iter()
        .filter(|t| t.started_at_ms > 0 && t.ended_at_ms >= t.started_at_ms)
        .collect();
    done.sort_by_key(|t| std::cmp::Reverse(t.ended_at_ms));
    done.truncate(MAX_EVENTS);
    done.sort_by_key(|t| (t.node_id.as_str(), t.started_at_ms, t.ended_at_ms));

    let mut by_node: BTreeMap<&str, Vec<&pb::TaskInfo>> = BTreeMap::new();
    for t in done {
        by_node.entry(t.node_id.as_str()).or_default().push(t);
    }
    let mut events = Vec::new();
    for (pid, (node, tasks)) in by_node.into_iter().enumerate() {
        events.push(json!({"name": "process_name", "ph": "M", "pid": pid,
            "args": {"name": format!("node {node}")}}));
        // A lane is free again once its last task ended (tasks sorted by start).
        let mut lanes: Vec<u64> = Vec::new();
        for t in tasks {
            let lane = match lanes.iter().position(|&end| end <= t.started_at_ms) {
                Some(i) => i,
                None => {
                    lanes.push(0);
                    events.push(json!({"name": "thread_name", "ph": "M", "pid": pid,
                        "tid": lanes.len(), "args": {"name": format!("worker {}", lanes.len())}}));
                    lanes.len() - 1
                }
            };
            lanes[lane] = t.ended_at_ms;
            events.push(json!({
                "name": t.function,
                "cat": t.state,
                "ph": "X",
                "ts": t.started_at_ms * 1000,
                "dur": (t.ended_at_ms - t.started_at_ms) * 1000,
                "pid": pid,
                "tid": lane + 1,
                "args": {
                    "task_id": format!("{:#x}", t.task_id),
                    "node_id": t.node_id,
                    "attempt": t.attempt,
                    "state": t.state,
                    "error_code": t.error_code,
                },
            }));
        }
    }
    json!({"traceEvents": events, "displayTimeUnit": "ms"})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(id: u64, node: &str, start: u64, end: u64) -> pb::TaskInfo {
        pb::TaskInfo {
            task_id: id,
            function: "f".into(),
            state: "finished".into(),
            node_id: node.into(),
            started_at_ms: start,
            ended_at_ms: end,
            ..Default::default()
        }
    }

    #[test]
    fn overlapping_tasks_get_their_own_lanes() {
        let tasks = [
            task(1, "a", 100, 200),
            task(2, "a", 150, 250),
            task(3, "a", 200, 300),
            task(4, "b", 100, 110),
            task(5, "b", 0, 0), // live: no bar
        ];
        let trace = trace(&tasks);
        let bars: Vec<&Value> = trace["traceEvents"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["ph"] == "X")
            .collect();
        assert_eq!(bars.len(), 4);
        let lane = |id: &str| {
            bars.iter()
                .find(|e| e["args"]["task_id"] == id)
                .map(|e| (e["pid"].as_u64().unwrap(), e["tid"].as_u64().unwrap()))
                .unwrap()
        };
        assert_eq!(lane("0x1"), (0, 1));
        assert_eq!(lane("0x2"), (0, 2));
        assert_eq!(lane("0x3"), (0, 1), "lane 1 is free when task 1 ended");
        assert_eq!(lane("0x4"), (1, 1));
        assert_eq!(bars[0]["dur"], 100_000);
    }
}
