//! The dashboard's JSON endpoints (`/api/...`): the state API and the logs
//! of this node called in process, every answer paged.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::StreamExt;
use reef_proto as pb;
use serde::Deserialize;
use serde_json::{json, Value};

use super::shared::{Caller, Dashboard};
use crate::error::{ErrorCode, ReefError};
use crate::rpc::state::api::MAX_LIMIT;
use crate::rpc::state::filter::parse_id;

/// Rows in a page when the page does not say.
const PAGE: usize = 100;
/// The most rows in a page.
const MAX_PAGE: usize = 1_000;
/// Bytes of log in a page when the page does not say, and at most.
const LOG_PAGE: u32 = 64 << 10;
const MAX_LOG_PAGE: u32 = 1 << 20;

/// `?offset=&limit=&state=&node_id=` of a listing.
#[derive(Deserialize, Default)]
pub struct Page {
    #[serde(default)]
    offset: usize,
    limit: Option<usize>,
    state: Option<String>,
    node_id: Option<String>,
}

impl Page {
    fn filters(&self) -> Vec<pb::StateFilter> {
        let mut filters = Vec::new();
        for (key, value) in [("state", &self.state), ("node_id", &self.node_id)] {
            if let Some(value) = value.as_ref().filter(|v| !v.is_empty()) {
                filters.push(pb::StateFilter {
                    key: key.into(),
                    value: value.clone(),
                });
            }
        }
        filters
    }

    /// This page of `rows`.
    fn of<T>(&self, rows: Vec<T>) -> Vec<T> {
        let limit = self.limit.unwrap_or(PAGE).clamp(1, MAX_PAGE);
        rows.into_iter().skip(self.offset).take(limit).collect()
    }
}

/// A failed request's answer: its Reef error code as an HTTP status.
pub struct ApiError(ReefError);

impl From<ReefError> for ApiError {
    fn from(e: ReefError) -> Self {
        ApiError(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match self.0.code {
            ErrorCode::BadArgument => StatusCode::BAD_REQUEST,
            ErrorCode::UnknownObject | ErrorCode::UnknownActor => StatusCode::NOT_FOUND,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let body = json!({"error": self.0.message, "code": self.0.code.as_str_name()});
        (status, Json(body)).into_response()
    }
}

type ApiResult = Result<Json<Value>, ApiError>;

fn hex(id: u64) -> String {
    format!("{id:#x}")
}

async fn list(
    dashboard: &Dashboard,
    caller: &Caller,
    kind: pb::StateKind,
    filters: Vec<pb::StateFilter>,
) -> Result<pb::ListReply, ApiError> {
    let request = pb::ListRequest {
        kind: kind as i32,
        filters,
        limit: MAX_LIMIT as u32,
        local_only: false,
    };
    Ok(dashboard.api.list(&caller.0, request).await?)
}

fn node_json(n: &pb::NodeStatus) -> Value {
    let resources: serde_json::Map<String, Value> = n
        .resources
        .iter()
        .map(|r| {
            (
                r.name.clone(),
                json!({"total": r.total, "available": r.available}),
            )
        })
        .collect();
    json!({"node_id": n.node_id, "address": n.address, "state": n.state, "head": n.head,
        "resources": resources, "running_tasks": n.running_tasks, "pending_tasks": n.pending_tasks,
        "store_used": n.store_used, "store_capacity": n.store_capacity})
}

fn task_json(t: &pb::TaskInfo) -> Value {
    json!({"task_id": hex(t.task_id), "module": t.module, "function": t.function,
        "state": t.state, "node_id": t.node_id, "attempt": t.attempt,
        "error_code": t.error_code, "error_message": t.error_message,
        "started_at_ms": t.started_at_ms, "ended_at_ms": t.ended_at_ms})
}

/// Tasks' counts by state (a failed task's state is `failed`).
async fn task_counts(dashboard: &Dashboard, caller: &Caller) -> Result<Value, ApiError> {
    let request = pb::SummaryRequest {
        kind: pb::StateKind::Tasks as i32,
    };
    let summary = dashboard.api.summary(&caller.0, request).await?;
    let mut counts = serde_json::Map::new();
    for row in &summary.rows {
        for (state, n) in &row.by_state {
            let entry = counts.entry(state.clone()).or_insert(json!(0));
            *entry = json!(entry.as_u64().unwrap_or(0) + n);
        }
    }
    Ok(
        json!({"by_state": counts, "missing_nodes": summary.missing_nodes,
        "by_function": summary.rows.iter().map(|r| json!({"key": r.key, "total": r.total,
            "by_state": r.by_state})).collect::<Vec<_>>()}),
    )
}

/// `/api/overview`: the nodes, their resources and store use, task counts.
pub async fn overview(State(d): State<Arc<Dashboard>>, caller: Caller) -> ApiResult {
    let nodes = list(&d, &caller, pb::StateKind::Nodes, vec![]).await?;
    let tasks = task_counts(&d, &caller).await?;
    Ok(Json(json!({
        "nodes": nodes.nodes.iter().map(node_json).collect::<Vec<_>>(),
        "tasks": tasks,
    })))
}

/// `/api/tasks`: live tasks first, then the most recently ended.
pub async fn tasks(
    State(d): State<Arc<Dashboard>>,
    caller: Caller,
    Query(page): Query<Page>,
) -> ApiResult {
    let mut reply = list(&d, &caller, pb::StateKind::Tasks, page.filters()).await?;
    reply
        .tasks
        .sort_by_key(|t| std::cmp::Reverse((t.ended_at_ms == 0, t.ended_at_ms, t.task_id)));
    let counts = task_counts(&d, &caller).await?;
    Ok(Json(json!({
        "total": reply.total,
        "counts": counts,
        "rows": page.of(reply.tasks).iter().map(task_json).collect::<Vec<_>>(),
        "missing_nodes": reply.missing_nodes,
    })))
}

/// `/api/actors|objects|groups|jobs`: one page of those rows.
pub async fn rows(d: Arc<Dashboard>, caller: Caller, kind: pb::StateKind, page: Page) -> ApiResult {
    let reply = list(&d, &caller, kind, page.filters()).await?;
    let rows: Vec<Value> = match kind {
        pb::StateKind::Actors => page
            .of(reply.actors)
            .iter()
            .map(|a| {
                json!({"actor_id": hex(a.actor_id), "name": a.name, "module": a.module,
                    "class": a.class, "state": a.state, "node_id": a.node_id})
            })
            .collect(),
        pb::StateKind::Objects => page
            .of(reply.objects)
            .iter()
            .map(|o| {
                json!({"object_id": hex(o.object_id), "size": o.size, "state": o.state,
                    "refs": o.refs, "node_id": o.node_id, "owner_index": o.owner_index})
            })
            .collect(),
        pb::StateKind::Groups => page
            .of(reply.groups)
            .iter()
            .map(|g| {
                let resources: serde_json::Map<String, Value> = g
                    .resources
                    .iter()
                    .map(|r| (r.name.clone(), json!(r.total)))
                    .collect();
                json!({"placement_group_id": hex(g.placement_group_id),
                    "bundle_index": g.bundle_index, "node_id": g.node_id, "resources": resources})
            })
            .collect(),
        pb::StateKind::Jobs => {
            let mut jobs = reply.jobs;
            jobs.sort_by_key(|j| std::cmp::Reverse(j.started_at_ms));
            page.of(jobs)
                .iter()
                .map(|j| {
                    json!({"job_id": hex(j.job_id), "driver_address": j.driver_address,
                        "description": j.description, "node_id": j.node_id, "state": j.state,
                        "started_at_ms": j.started_at_ms, "ended_at_ms": j.ended_at_ms})
                })
                .collect()
        }
        _ => page.of(reply.nodes).iter().map(node_json).collect(),
    };
    Ok(Json(json!({
        "total": reply.total,
        "rows": rows,
        "missing_nodes": reply.missing_nodes,
    })))
}

/// `?id=&offset=&max_bytes=` of a log page.
#[derive(Deserialize)]
pub struct LogPage {
    id: String,
    #[serde(default)]
    offset: u64,
    max_bytes: Option<u32>,
}

/// `/api/logs`: one page of the log of a task, actor call or actor, from
/// whichever node holds it.
pub async fn logs(
    State(d): State<Arc<Dashboard>>,
    caller: Caller,
    Query(page): Query<LogPage>,
) -> ApiResult {
    let id = parse_id(page.id.trim()).ok_or_else(|| {
        ReefError::new(
            ErrorCode::BadArgument,
            format!("`{}` is not an id (0x... hex or decimal)", page.id),
        )
    })?;
    let request = pb::ReadLogsRequest {
        id,
        target: pb::LogTarget::Any as i32,
        offset: page.offset,
        max_bytes: page.max_bytes.unwrap_or(LOG_PAGE).clamp(1, MAX_LOG_PAGE),
        follow: false,
        local_only: false,
        scope_tenant: None,
    };
    let mut stream = crate::rpc::state::logs::read(d.api.clone(), &caller.0, request).await?;
    // One chunk is one page; the rest of the stream is dropped unread.
    let chunk = match stream.next().await {
        Some(chunk) => chunk.map_err(ReefError::from)?,
        None => pb::LogChunk {
            eof: true,
            next_offset: page.offset,
            ..Default::default()
        },
    };
    Ok(Json(json!({
        "id": hex(id),
        "node_id": chunk.node_id,
        "lines": chunk.lines.iter().map(|l| json!({"stream": l.stream, "text": l.text})).collect::<Vec<_>>(),
        "offset": page.offset,
        "next_offset": chunk.next_offset,
        "skipped": chunk.skipped,
        "eof": chunk.eof,
    })))
}

/// `/api/timeline`: recent tasks as a Chrome trace.
pub async fn timeline(State(d): State<Arc<Dashboard>>, caller: Caller) -> ApiResult {
    let reply = list(&d, &caller, pb::StateKind::Tasks, vec![]).await?;
    Ok(Json(super::timeline::trace(&reply.tasks)))
}
