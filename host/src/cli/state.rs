//! `host list`, `host get`, `host summary` and `host logs`: the state API and
//! logs, printed as tables, JSON, or log lines.

use anyhow::{bail, Result};
use bytesize::ByteSize;
use futures::StreamExt;
use pb::StateKind;
use reef_core::TenantId;
use reef_proto as pb;
use reef_proto::auth::TokenChannel;
use reef_proto::node_client::NodeClient;
use serde_json::{json, Value};

use crate::rpc::state::filter::parse_id;

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Kind {
    Nodes,
    Tasks,
    Actors,
    Objects,
    Groups,
    Jobs,
    Modules,
}

impl Kind {
    fn proto(self) -> StateKind {
        match self {
            Kind::Nodes => StateKind::Nodes,
            Kind::Tasks => StateKind::Tasks,
            Kind::Actors => StateKind::Actors,
            Kind::Objects => StateKind::Objects,
            Kind::Groups => StateKind::Groups,
            Kind::Jobs => StateKind::Jobs,
            Kind::Modules => StateKind::Modules,
        }
    }
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum One {
    Task,
    Actor,
    Object,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Counted {
    Tasks,
    Actors,
    Objects,
}

pub fn parse_filter(s: &str) -> Result<(String, String), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("expected KEY=VALUE, got `{s}`"))?;
    Ok((k.trim().to_string(), v.trim().to_string()))
}

fn id(s: &str) -> Result<u64> {
    match parse_id(s) {
        Some(id) => Ok(id),
        None => bail!("`{s}` is not an id (0x... hex or decimal)"),
    }
}

pub async fn list(
    mut client: NodeClient<TokenChannel>,
    kind: Kind,
    filters: Vec<(String, String)>,
    limit: Option<u32>,
    as_json: bool,
) -> Result<()> {
    let reply = client
        .list(pb::ListRequest {
            kind: kind.proto() as i32,
            filters: filters
                .into_iter()
                .map(|(key, value)| pb::StateFilter { key, value })
                .collect(),
            limit: limit.unwrap_or(0),
            local_only: false,
        })
        .await
        .map_err(status_error)?
        .into_inner();
    print_rows(&reply, as_json);
    Ok(())
}

pub async fn get(
    mut client: NodeClient<TokenChannel>,
    what: One,
    which: &str,
    as_json: bool,
) -> Result<()> {
    let kind = match what {
        One::Task => StateKind::Tasks,
        One::Actor => StateKind::Actors,
        One::Object => StateKind::Objects,
    };
    let reply = client
        .get_state(pb::GetStateRequest {
            kind: kind as i32,
            id: id(which)?,
        })
        .await
        .map_err(status_error)?
        .into_inner();
    print_rows(&reply, as_json);
    Ok(())
}

pub async fn summary(
    mut client: NodeClient<TokenChannel>,
    what: Counted,
    as_json: bool,
) -> Result<()> {
    let kind = match what {
        Counted::Tasks => StateKind::Tasks,
        Counted::Actors => StateKind::Actors,
        Counted::Objects => StateKind::Objects,
    };
    let reply = client
        .summary(pb::SummaryRequest { kind: kind as i32 })
        .await
        .map_err(status_error)?
        .into_inner();
    if as_json {
        let rows: Vec<Value> = reply
            .rows
            .iter()
            .map(|r| json!({"key": r.key, "total": r.total, "by_state": r.by_state, "bytes": r.bytes}))
            .collect();
        println!(
            "{}",
            json!({"rows": rows, "missing_nodes": reply.missing_nodes})
        );
        return Ok(());
    }
    for r in &reply.rows {
        let states: Vec<String> = r.by_state.iter().map(|(s, n)| format!("{s} {n}")).collect();
        let bytes = if kind == StateKind::Objects {
            format!(" ({})", ByteSize(r.bytes))
        } else {
            String::new()
        };
        println!("{:<40} {:>7}{bytes}  {}", r.key, r.total, states.join(", "));
    }
    missing(&reply.missing_nodes);
    Ok(())
}

pub async fn logs(
    mut client: NodeClient<TokenChannel>,
    which: &str,
    follow: bool,
    actor: bool,
) -> Result<()> {
    let mut stream = client
        .read_logs(pb::ReadLogsRequest {
            id: id(which)?,
            target: if actor {
                pb::LogTarget::Actor
            } else {
                pb::LogTarget::Any
            } as i32,
            offset: 0,
            max_bytes: 0,
            follow,
            local_only: false,
            scope_tenant: None,
        })
        .await
        .map_err(status_error)?
        .into_inner();
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(status_error)?;
        if chunk.skipped > 0 {
            writeln!(
                out,
                "[reef] {} bytes deleted by the node's log cap",
                chunk.skipped
            )?;
        }
        for line in chunk.lines {
            match line.stream.as_str() {
                "stdout" => write!(out, "{}", line.text)?,
                "stderr" => {
                    out.flush()?;
                    eprint!("{}", line.text);
                }
                "log" => writeln!(out, "{}", line.text)?,
                _ => writeln!(out, "[reef] {}", line.text)?,
            }
        }
        out.flush()?;
        if chunk.eof {
            break;
        }
    }
    Ok(())
}

/// A gRPC error with the node's `reef.v1.Error` as its message.
fn status_error(status: tonic::Status) -> anyhow::Error {
    let e = reef_core::ReefError::from(status);
    anyhow::anyhow!("{}: {}", e.code.as_str_name(), e.message)
}

fn missing(nodes: &[String]) {
    if !nodes.is_empty() {
        eprintln!("nodes that did not answer in time: {}", nodes.join(", "));
    }
}

fn short(s: &str) -> &str {
    &s[..s.len().min(12)]
}

fn print_rows(reply: &pb::ListReply, as_json: bool) {
    if as_json {
        println!("{}", to_json(reply));
        return;
    }
    for n in &reply.nodes {
        println!(
            "{}  {:<21} {:<8} head={} running={} pending={} store={}/{}",
            n.node_id,
            n.address,
            n.state,
            n.head,
            n.running_tasks,
            n.pending_tasks,
            ByteSize(n.store_used),
            ByteSize(n.store_capacity)
        );
    }
    for t in &reply.tasks {
        let error = if t.error_code.is_empty() {
            String::new()
        } else {
            format!(
                "  {}: {}",
                t.error_code,
                t.error_message.lines().next().unwrap_or("")
            )
        };
        println!(
            "{:#018x}  {} {:<20} {:<22} attempt {}  node {}  tenant {}{error}",
            t.task_id,
            short(&t.module),
            t.function,
            t.state,
            t.attempt.max(1),
            t.node_id,
            TenantId::from_wire(&t.tenant)
        );
    }
    for a in &reply.actors {
        println!(
            "{:#018x}  {} {:<16} {:<12} {:<10} node {}  tenant {}",
            a.actor_id,
            short(&a.module),
            a.class,
            if a.name.is_empty() { "-" } else { &a.name },
            a.state,
            a.node_id,
            TenantId::from_wire(&a.tenant)
        );
    }
    for o in &reply.objects {
        println!(
            "{:#018x}  {:>10} {:<8} refs {}  node {}",
            o.object_id,
            ByteSize(o.size).to_string(),
            o.state,
            o.refs,
            o.node_id
        );
    }
    for g in &reply.groups {
        let resources: Vec<String> = g
            .resources
            .iter()
            .map(|r| format!("{}={}", r.name, r.total))
            .collect();
        println!(
            "{:#x} bundle {}  node {}  {}",
            g.placement_group_id,
            g.bundle_index,
            g.node_id,
            resources.join(" ")
        );
    }
    for j in &reply.jobs {
        let submitted = if j.submission_id.is_empty() {
            String::new()
        } else {
            format!("  submitted job {}", j.submission_id)
        };
        println!(
            "{:<6} {:<8} {:<24} node {}  started {} ended {}{submitted}",
            j.job_id, j.state, j.driver_address, j.node_id, j.started_at_ms, j.ended_at_ms
        );
    }
    for m in &reply.modules {
        if let Some(info) = &m.module {
            println!(
                "{}  {:<8} {} tasks, {} actor classes  nodes {}",
                short(&info.hash),
                info.sdk,
                info.tasks.len(),
                info.actors.len(),
                m.node_ids.len()
            );
        }
    }
    let shown = reply.nodes.len()
        + reply.tasks.len()
        + reply.actors.len()
        + reply.objects.len()
        + reply.groups.len()
        + reply.jobs.len()
        + reply.modules.len();
    if (shown as u64) < reply.total {
        eprintln!("showing {shown} of {} (--limit N for more)", reply.total);
    }
    missing(&reply.missing_nodes);
}

fn to_json(reply: &pb::ListReply) -> Value {
    let hex = |id: u64| format!("{id:#x}");
    let rows: Vec<Value> = reply
        .nodes
        .iter()
        .map(|n| json!({"node_id": n.node_id, "address": n.address, "state": n.state, "head": n.head,
            "running_tasks": n.running_tasks, "pending_tasks": n.pending_tasks,
            "store_used": n.store_used, "store_capacity": n.store_capacity}))
        .chain(reply.tasks.iter().map(|t| json!({"task_id": hex(t.task_id), "module": t.module,
            "function": t.function, "state": t.state, "node_id": t.node_id, "attempt": t.attempt,
            "error_code": t.error_code, "error_message": t.error_message,
            "started_at_ms": t.started_at_ms, "ended_at_ms": t.ended_at_ms,
            "tenant": TenantId::from_wire(&t.tenant).to_string()})))
        .chain(reply.actors.iter().map(|a| json!({"actor_id": hex(a.actor_id), "name": a.name,
            "module": a.module, "class": a.class, "state": a.state, "node_id": a.node_id,
            "tenant": TenantId::from_wire(&a.tenant).to_string()})))
        .chain(reply.objects.iter().map(|o| json!({"object_id": hex(o.object_id), "size": o.size,
            "state": o.state, "refs": o.refs, "node_id": o.node_id, "owner_index": o.owner_index})))
        .chain(reply.groups.iter().map(|g| json!({"placement_group_id": hex(g.placement_group_id),
            "bundle_index": g.bundle_index, "node_id": g.node_id,
            "resources": g.resources.iter().map(|r| (r.name.clone(), json!(r.total))).collect::<serde_json::Map<_, _>>()})))
        .chain(reply.jobs.iter().map(|j| json!({"job_id": j.job_id, "driver_address": j.driver_address,
            "description": j.description, "node_id": j.node_id, "state": j.state,
            "started_at_ms": j.started_at_ms, "ended_at_ms": j.ended_at_ms,
            "submission_id": j.submission_id})))
        .chain(reply.modules.iter().filter_map(|m| m.module.as_ref().map(|i| json!({"hash": i.hash,
            "sdk": i.sdk, "tasks": i.tasks, "size": i.size, "node_ids": m.node_ids}))))
        .collect();
    json!({"rows": rows, "total": reply.total, "missing_nodes": reply.missing_nodes})
}
