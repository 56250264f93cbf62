//! The recent tasks of every node as a Chrome trace (the JSON that Perfetto
//! and `chrome://tracing` open): one complete event (`ph: "X"`) per finished
//! attempt, `pid` a node, `tid` a worker lane of that node.
//!
//! A task runs in a fresh instance on whichever guest thread is free (and may
//! move between threads mid-call), so a node has no fixed worker per task;
//! its lanes are drawn from the times: each attempt goes to the lowest lane
//! free when it started, so attempts that overlapped are on different lanes
//! and a node shows as many lanes as it ran tasks at once.

use std::collections::BTreeMap;

use reef_proto as pb;
use serde_json::{json, Value};

use crate::error::ReefResult;
use crate::rpc::state::api::StateApi;
use crate::rpc::state::scope::Viewer;

/// Attempts in a timeline when the caller does not say.
pub const DEFAULT_LIMIT: usize = 1000;
/// The most attempts in one timeline (every node's whole history).
pub const MAX_LIMIT: usize = 100_000;

/// The cluster's timeline, gathered from every node like `host list tasks`.
pub async fn gather(
    state: &StateApi,
    viewer: &Viewer,
    limit: usize,
) -> ReefResult<pb::TimelineReply> {
    let limit = match limit {
        0 => DEFAULT_LIMIT,
        n => n.min(MAX_LIMIT),
    };
    let (tasks, missing_nodes) = state.all_tasks(viewer).await?;
    Ok(pb::TimelineReply {
        trace_json: chrome_trace(&tasks, limit).to_string(),
        missing_nodes,
    })
}

/// The `limit` most recently ended attempts of `tasks` (rows without times,
/// those still running or queued, are left out) as a Chrome trace.
pub fn chrome_trace(tasks: &[pb::TaskInfo], limit: usize) -> Value {
    let mut ended: Vec<&pb::TaskInfo> = tasks
        .iter()
        .filter(|t| t.started_at_us > 0 && t.ended_at_us >= t.started_at_us)
        .collect();
    ended.sort_by_key(|t| t.ended_at_us);
    let ended = &ended[ended.len().saturating_sub(limit)..];
    let mut by_node: BTreeMap<&str, Vec<&pb::TaskInfo>> = BTreeMap::new();
    for t in ended {
        by_node.entry(&t.node_id).or_default().push(t);
    }
    let mut events = Vec::new();
    for (pid, (node_id, mut attempts)) in by_node.into_iter().enumerate() {
        let pid = pid + 1;
        events.push(json!({
            "name": "process_name", "ph": "M", "pid": pid,
            "args": {"name": format!("node {node_id}")},
        }));
        attempts.sort_by_key(|t| (t.started_at_us, t.ended_at_us));
        // Each lane's end time.
        let mut lanes: Vec<u64> = Vec::new();
        for t in attempts {
            let lane = match lanes.iter().position(|end| *end <= t.started_at_us) {
                Some(lane) => lane,
                None => {
                    lanes.push(0);
                    events.push(json!({
                        "name": "thread_name", "ph": "M", "pid": pid, "tid": lanes.len(),
                        "args": {"name": format!("worker {}", lanes.len())},
                    }));
                    lanes.len() - 1
                }
            };
            lanes[lane] = t.ended_at_us;
            let mut args = json!({
                "task_id": format!("{:#x}", t.task_id),
                "attempt": t.attempt,
                "state": t.state,
                "node_id": t.node_id,
                "module": t.module,
            });
            if !t.error_code.is_empty() {
                args["error_code"] = json!(t.error_code);
                args["error"] = json!(t.error_message);
            }
            events.push(json!({
                "name": format!("{}.{}", &t.module[..t.module.len().min(12)], t.function),
                "cat": if t.error_code.is_empty() { "task" } else { "task,failed" },
                "ph": "X",
                "ts": t.started_at_us,
                "dur": t.ended_at_us - t.started_at_us,
                "pid": pid,
                "tid": lane + 1,
                "args": args,
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
            module: "0123456789abcdef".into(),
            function: "add".into(),
            state: "finished".into(),
            node_id: node.into(),
            attempt: 1,
            started_at_us: start,
            ended_at_us: end,
            ..Default::default()
        }
    }

    fn complete(trace: &Value) -> Vec<&Value> {
        trace["traceEvents"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["ph"] == "X")
            .collect()
    }

    #[test]
    fn overlapping_attempts_get_their_own_lanes() {
        let tasks = vec![
            task(1, "a", 100, 200),
            task(2, "a", 150, 250),
            task(3, "a", 210, 300), // lane 1 is free again at 200
            task(4, "b", 100, 120),
            pb::TaskInfo {
                state: "running".into(),
                ..task(5, "a", 0, 0)
            },
        ];
        let trace = chrome_trace(&tasks, 100);
        let x = complete(&trace);
        assert_eq!(x.len(), 4);
        let lane = |id: &str| {
            let e = x.iter().find(|e| e["args"]["task_id"] == id).unwrap();
            (e["pid"].as_u64().unwrap(), e["tid"].as_u64().unwrap())
        };
        assert_eq!(lane("0x1"), (1, 1));
        assert_eq!(lane("0x2"), (1, 2));
        assert_eq!(lane("0x3"), (1, 1));
        assert_eq!(lane("0x4"), (2, 1));
        assert_eq!(x[0]["name"], "0123456789ab.add");
        assert_eq!(x[0]["dur"], 100);
    }

    #[test]
    fn keeps_the_most_recent_attempts() {
        let tasks: Vec<_> = (0..10).map(|i| task(i, "a", i * 10, i * 10 + 5)).collect();
        let trace = chrome_trace(&tasks, 3);
        let mut ids: Vec<_> = complete(&trace)
            .iter()
            .map(|e| e["args"]["task_id"].as_str().unwrap().to_string())
            .collect();
        ids.sort();
        assert_eq!(ids, ["0x7", "0x8", "0x9"]);
    }
}
