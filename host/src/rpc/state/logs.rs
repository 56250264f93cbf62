//! Logs from any node: read from this node's files when it ran the task or
//! actor, else from the node that did (every alive node is asked at once;
//! the one that has the log streams it, proxied here). With `follow`, a
//! stream waits for more lines until the task or actor ends.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt};
use reef_proto as pb;
use tonic::Status;

use super::api::{StateApi, FAN_OUT_DEADLINE};
use super::scope::Viewer;
use crate::error::{ReefError, ReefResult};
use crate::logs::{no_logs, Stream as Output, Target};
use crate::node::Node;

pub type ChunkStream = Pin<Box<dyn Stream<Item = Result<pb::LogChunk, Status>> + Send>>;

/// Bytes per chunk when the reader does not say.
const DEFAULT_CHUNK: usize = 1 << 20;
/// How often a follower looks for new lines.
const FOLLOW_POLL: Duration = Duration::from_millis(100);
/// The longest pause between looks for a log that has not appeared yet:
/// each look asks every node (and the state API), so the pauses double from
/// `FOLLOW_POLL` up to this.
const FIRST_LINE_POLL_MAX: Duration = Duration::from_secs(1);
/// The most a driver's `logs(ref)` returns in one reply (a call writes at
/// most its cap; this bounds a cap set very high).
const WHOLE_CALL_MAX: usize = 64 << 20;

fn target(t: i32) -> Target {
    match pb::LogTarget::try_from(t) {
        Ok(pb::LogTarget::Call) => Target::Call,
        Ok(pb::LogTarget::Actor) => Target::Actor,
        _ => Target::Any,
    }
}

/// The log of `request.id` as a stream of chunks, from wherever it is.
/// A follower of a task or actor that exists but has not written yet (an
/// actor still being placed, a queued task) waits for its first line
/// instead of being told there is no log.
pub async fn read(
    api: Arc<StateApi>,
    viewer: &Viewer,
    request: pb::ReadLogsRequest,
) -> ReefResult<ChunkStream> {
    let mut pause = FOLLOW_POLL;
    loop {
        match find(api.clone(), viewer, request.clone()).await {
            Err(e)
                if request.follow
                    && !request.local_only
                    && live(&api, viewer, request.id).await =>
            {
                tracing::trace!("following {:#x} before its first line: {e}", request.id);
                tokio::select! {
                    _ = tokio::time::sleep(pause) => {
                        pause = (pause * 2).min(FIRST_LINE_POLL_MAX);
                        continue;
                    }
                    _ = api.node().stopping.cancelled() => return Err(e),
                }
            }
            found => return found,
        }
    }
}

/// Whether `id` is an actor or task `viewer` sees that has not ended (so
/// its log may still appear). A forwarded row stands for a run elsewhere,
/// which has its own row.
async fn live(api: &StateApi, viewer: &Viewer, id: u64) -> bool {
    for kind in [pb::StateKind::Actors, pb::StateKind::Tasks] {
        let request = pb::GetStateRequest {
            kind: kind as i32,
            id,
        };
        let Ok(reply) = api.get(viewer, request).await else {
            continue;
        };
        let ended = |state: &str| {
            ["dead", "finished", "failed", "forwarded"]
                .iter()
                .any(|end| state.starts_with(end))
        };
        return reply.actors.iter().any(|a| !ended(&a.state))
            || reply.tasks.iter().any(|t| !ended(&t.state));
    }
    false
}

/// One look for the log of `request.id`: here, else on every other node.
async fn find(
    api: Arc<StateApi>,
    viewer: &Viewer,
    request: pb::ReadLogsRequest,
) -> ReefResult<ChunkStream> {
    let id = request.id;
    let node = api.node().clone();
    if node.logs.read(id, target(request.target), 0, 0).is_some() {
        // A foreign log answers as a missing one (its id is not revealed).
        if !viewer.may_read_logs(&node, id, target(request.target)) {
            return Err(no_logs(id));
        }
        return Ok(local(node, request));
    }
    if request.local_only {
        return Err(no_logs(id));
    }
    let mut asked = request;
    asked.local_only = true;
    // The node holding the log checks it against the caller's tenant.
    asked.scope_tenant = viewer.narrowed_to().map(|t| t.to_wire());
    let asks: Vec<_> = api
        .peers()
        .into_iter()
        .map(|(peer, address)| {
            let client = api.client(&peer, &address);
            let asked = asked.clone();
            Box::pin(async move {
                let mut client = client.map_err(|e| e.message)?;
                match tokio::time::timeout(FAN_OUT_DEADLINE, client.read_logs(asked)).await {
                    Ok(Ok(stream)) => Ok(stream.into_inner()),
                    Ok(Err(status)) => Err(status.message().to_string()),
                    Err(_) => Err(format!("node {peer} did not answer")),
                }
            })
        })
        .collect();
    if asks.is_empty() {
        return Err(no_logs(id));
    }
    match futures::future::select_ok(asks).await {
        Ok((stream, _)) => Ok(Box::pin(stream)),
        Err(_) => Err(no_logs(id)),
    }
}

/// Pages of a log in this node's files.
fn local(node: Arc<Node>, request: pb::ReadLogsRequest) -> ChunkStream {
    let max = match request.max_bytes {
        0 => DEFAULT_CHUNK,
        n => n as usize,
    };
    let target = target(request.target);
    let stopping = node.stopping.clone();
    let state = (node, request.offset, false);
    let stream = futures::stream::unfold(state, move |(node, offset, done)| {
        let stopping = stopping.clone();
        async move {
            if done {
                return None;
            }
            loop {
                let Some(page) = node.logs.read(request.id, target, offset, max) else {
                    let e = no_logs(request.id);
                    return Some((Err(Status::from(e)), (node, offset, true)));
                };
                let nothing = page.lines.is_empty() && page.skipped == 0;
                if request.follow && nothing && !page.finished {
                    tokio::select! {
                        _ = tokio::time::sleep(FOLLOW_POLL) => continue,
                        _ = stopping.cancelled() => return None,
                    }
                }
                let eof = page.at_end && (!request.follow || page.finished);
                let chunk = pb::LogChunk {
                    lines: page
                        .lines
                        .into_iter()
                        .map(|(stream, text)| pb::LogLine {
                            stream: stream.name().into(),
                            text,
                        })
                        .collect(),
                    next_offset: page.next_offset,
                    eof,
                    node_id: node.id.clone(),
                    skipped: page.skipped,
                };
                let next = page.next_offset;
                return Some((Ok(chunk), (node, next, eof)));
            }
        }
    });
    Box::pin(stream)
}

/// A driver's `logs(ref)`: the whole log of one task or actor call, when
/// `viewer` may read it.
pub async fn whole_call(node: &Arc<Node>, viewer: &Viewer, id: u64) -> ReefResult<pb::LogsReply> {
    let mut reply = pb::LogsReply::default();
    let here = node.logs.owner(id, Target::Call).is_some();
    if here && !viewer.may_read_logs(node, id, Target::Call) {
        return Err(no_logs(id));
    }
    if let Some(lines) = crate::logs::whole_call(&node.logs, id)? {
        for (stream, text) in lines {
            add(&mut reply, stream.name(), text);
        }
        return Ok(reply);
    }
    let api = StateApi::of(node);
    let request = pb::ReadLogsRequest {
        id,
        target: pb::LogTarget::Call as i32,
        ..Default::default()
    };
    let mut stream = read(api, viewer, request).await?;
    let mut bytes = 0;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(ReefError::from)?;
        for line in chunk.lines {
            bytes += line.text.len();
            add(&mut reply, &line.stream, line.text);
        }
        if chunk.eof || bytes > WHOLE_CALL_MAX {
            break;
        }
    }
    Ok(reply)
}

fn add(reply: &mut pb::LogsReply, stream: &str, text: String) {
    match stream {
        s if s == Output::Stdout.name() => reply.stdout.push_str(&text),
        s if s == Output::Stderr.name() => reply.stderr.push_str(&text),
        s if s == Output::Log.name() => reply.log.push(text),
        _ => reply.log.push(format!("[reef] {text}")),
    }
}
