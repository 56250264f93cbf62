//! `StateApi`: one node's answers for the whole cluster, and its clients to
//! the other nodes.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use pb::StateKind;
use reef_proto as pb;
use reef_proto::auth::{AttachToken, TokenChannel};
use reef_proto::peer_state_client::PeerStateClient;

use super::filter::{self, Filters};
use super::rows;
use super::scope::Viewer;
use crate::error::{ErrorCode, ReefError, ReefResult};
use crate::node::Node;

/// How long a node waits for the others' rows.
pub const FAN_OUT_DEADLINE: Duration = Duration::from_secs(3);
/// Rows a listing returns when no limit is asked.
pub const DEFAULT_LIMIT: usize = 100;
/// The most rows a listing returns.
pub const MAX_LIMIT: usize = 10_000;

/// The state API of one node: its clients to the other nodes.
pub struct StateApi {
    node: Arc<Node>,
    clients: Mutex<HashMap<String, (String, PeerStateClient<TokenChannel>)>>,
}

/// Each node's `StateApi` while something holds it (its services do), so
/// every caller on a node shares its connections to the other nodes.
static APIS: Mutex<Vec<(String, Weak<StateApi>)>> = Mutex::new(Vec::new());

impl StateApi {
    /// The state API of `node`.
    pub fn of(node: &Arc<Node>) -> Arc<StateApi> {
        let mut apis = APIS.lock().unwrap();
        apis.retain(|(_, api)| api.strong_count() > 0);
        if let Some(api) = apis
            .iter()
            .find(|(id, _)| id == &node.id)
            .and_then(|(_, api)| api.upgrade())
        {
            return api;
        }
        let api = Arc::new(StateApi {
            node: node.clone(),
            clients: Mutex::default(),
        });
        apis.push((node.id.clone(), Arc::downgrade(&api)));
        api
    }

    pub fn node(&self) -> &Arc<Node> {
        &self.node
    }

    /// A client to node `node_id` at `address` (kept for the next request).
    pub(crate) fn client(
        &self,
        node_id: &str,
        address: &str,
    ) -> ReefResult<PeerStateClient<TokenChannel>> {
        let mut clients = self.clients.lock().unwrap();
        if let Some((at, client)) = clients.get(node_id) {
            if at == address {
                return Ok(client.clone());
            }
        }
        let token = &self.node.config.token;
        let attach =
            AttachToken::new(token).map_err(|e| ReefError::new(ErrorCode::BadArgument, e))?;
        let client =
            PeerStateClient::with_interceptor(crate::cluster::channel(address, token)?, attach)
                .max_decoding_message_size(usize::MAX);
        clients.insert(node_id.to_string(), (address.to_string(), client.clone()));
        Ok(client)
    }

    /// The other alive nodes: (id, address).
    pub(crate) fn peers(&self) -> Vec<(String, String)> {
        self.node
            .cluster
            .view()
            .nodes
            .iter()
            .filter(|n| n.node_id != self.node.id && n.state == pb::NodeState::Alive as i32)
            .map(|n| (n.node_id.clone(), n.address.clone()))
            .collect()
    }

    /// Every node's rows of `kind` matching `filters`, and the nodes that
    /// did not answer in time.
    async fn gather(
        &self,
        kind: StateKind,
        filters: &[pb::StateFilter],
    ) -> ReefResult<(Vec<pb::ListReply>, Vec<String>)> {
        let checked = Filters::parse(kind, filters)?;
        let mut replies = vec![rows::local(&self.node, kind, &checked)];
        let request = pb::ListRequest {
            kind: kind as i32,
            filters: filters.to_vec(),
            limit: 0,
            local_only: true,
        };
        let asks = self.peers().into_iter().map(|(id, address)| {
            let request = request.clone();
            let client = self.client(&id, &address);
            async move {
                let answer = match client {
                    Ok(mut client) => {
                        tokio::time::timeout(FAN_OUT_DEADLINE, client.local_state(request)).await
                    }
                    Err(_) => return Err(id),
                };
                match answer {
                    Ok(Ok(reply)) => Ok(reply.into_inner()),
                    Ok(Err(status)) => {
                        tracing::debug!("state of node {id}: {status}");
                        Err(id)
                    }
                    Err(_) => Err(id),
                }
            }
        });
        let mut missing = Vec::new();
        for answer in futures::future::join_all(asks).await {
            match answer {
                Ok(reply) => replies.push(reply),
                Err(id) => missing.push(id),
            }
        }
        missing.sort();
        Ok((replies, missing))
    }

    /// `host list KIND`: the cluster's rows, filtered, at most `limit`.
    pub async fn list(
        &self,
        viewer: &Viewer,
        request: pb::ListRequest,
    ) -> ReefResult<pb::ListReply> {
        let kind = kind_of(request.kind)?;
        if request.local_only {
            let filters = Filters::parse(kind, &request.filters)?;
            let mut reply = viewer.scope(rows::local(&self.node, kind, &filters));
            self.scope_modules(viewer, &mut reply).await;
            return Ok(reply);
        }
        let limit = match request.limit as usize {
            0 => DEFAULT_LIMIT,
            n => n.min(MAX_LIMIT),
        };
        let filters = Filters::parse(kind, &request.filters)?;
        let mut reply = pb::ListReply {
            kind: kind as i32,
            ..Default::default()
        };
        match kind {
            StateKind::Nodes => {
                reply.nodes = crate::rpc::status::status(&self.node, viewer).nodes;
            }
            StateKind::Jobs => {
                let jobs = self
                    .node
                    .cluster
                    .gcs()?
                    .list_jobs()
                    .await
                    .map_err(ReefError::from)?;
                reply.jobs = jobs
                    .into_iter()
                    .map(|j| pb::JobRow {
                        job_id: j.job_id,
                        driver_address: j.driver_address,
                        description: j.description,
                        node_id: j.node_id,
                        started_at_ms: j.started_at_ms,
                        ended_at_ms: j.ended_at_ms,
                        submission_id: j.submission_id,
                        tenant: j.tenant,
                        state: if j.ended_at_ms == 0 {
                            "running"
                        } else {
                            "ended"
                        }
                        .into(),
                    })
                    .collect();
            }
            _ => {
                let (replies, missing) = self.gather(kind, &request.filters).await?;
                reply = merge(kind, replies);
                reply.missing_nodes = missing;
            }
        }
        let mut reply = viewer.scope(reply);
        self.scope_modules(viewer, &mut reply).await;
        reply.total = filter_and_limit(&mut reply, &filters, limit) as u64;
        Ok(reply)
    }

    /// Keeps the module rows a tenant may see: modules it may run (those
    /// it registered, and public ones: `module_owners`). Asked per module
    /// (the node's known answers first, else the control plane's record).
    async fn scope_modules(&self, viewer: &Viewer, reply: &mut pb::ListReply) {
        let Some(tenant) = viewer.narrowed_to() else {
            return;
        };
        if reply.modules.is_empty() {
            return;
        }
        let owners = self.node.registry.owners();
        let visible = futures::future::join_all(reply.modules.iter().map(|m| async move {
            let hash = m.module.as_ref().map_or("", |i| i.hash.as_str());
            owners.may_run(hash, tenant).await
        }))
        .await;
        let mut visible = visible.into_iter();
        reply.modules.retain(|_| visible.next().unwrap_or(false));
    }

    /// Every node's task rows (running and recently finished), merged, as
    /// `viewer` may see them, and the nodes that did not answer in time.
    pub async fn all_tasks(&self, viewer: &Viewer) -> ReefResult<(Vec<pb::TaskInfo>, Vec<String>)> {
        let (replies, missing) = self.gather(StateKind::Tasks, &[]).await?;
        Ok((
            viewer.scope(merge(StateKind::Tasks, replies)).tasks,
            missing,
        ))
    }

    /// `host get KIND ID`: every row of that id (a task's attempts, the
    /// copies of an object), or UNKNOWN_* when no node has one.
    pub async fn get(
        &self,
        viewer: &Viewer,
        request: pb::GetStateRequest,
    ) -> ReefResult<pb::ListReply> {
        let kind = kind_of(request.kind)?;
        let (key, code) = match kind {
            StateKind::Tasks => ("task_id", ErrorCode::UnknownObject),
            StateKind::Actors => ("actor_id", ErrorCode::UnknownActor),
            StateKind::Objects => ("object_id", ErrorCode::UnknownObject),
            _ => {
                return Err(ReefError::new(
                    ErrorCode::BadArgument,
                    "get works on tasks, actors and objects",
                ))
            }
        };
        let list = pb::ListRequest {
            kind: kind as i32,
            filters: vec![pb::StateFilter {
                key: key.into(),
                value: format!("{:#x}", request.id),
            }],
            limit: MAX_LIMIT as u32,
            local_only: false,
        };
        let reply = self.list(viewer, list).await?;
        if reply.total == 0 {
            let what = &filter::kind_name(kind)[..filter::kind_name(kind).len() - 1];
            let mut message = format!("no {what} {:#x} on any node", request.id);
            if !reply.missing_nodes.is_empty() {
                message.push_str(&format!(
                    " (nodes that did not answer: {})",
                    reply.missing_nodes.join(", ")
                ));
            }
            return Err(ReefError::new(code, message));
        }
        Ok(reply)
    }

    /// `host summary KIND`: counts by function (tasks), class (actors) or
    /// state (objects), each split by state.
    pub async fn summary(
        &self,
        viewer: &Viewer,
        request: pb::SummaryRequest,
    ) -> ReefResult<pb::SummaryReply> {
        let kind = kind_of(request.kind)?;
        if !matches!(
            kind,
            StateKind::Tasks | StateKind::Actors | StateKind::Objects
        ) {
            return Err(ReefError::new(
                ErrorCode::BadArgument,
                "summary works on tasks, actors and objects",
            ));
        }
        let (replies, missing) = self.gather(kind, &[]).await?;
        let reply = viewer.scope(merge(kind, replies));
        Ok(pb::SummaryReply {
            kind: kind as i32,
            rows: summarize(&reply),
            missing_nodes: missing,
        })
    }
}

fn kind_of(kind: i32) -> ReefResult<StateKind> {
    match StateKind::try_from(kind) {
        Ok(StateKind::Unspecified) | Err(_) => Err(ReefError::new(
            ErrorCode::BadArgument,
            format!("unknown state kind {kind}: use nodes, tasks, actors, objects, groups, jobs or modules"),
        )),
        Ok(kind) => Ok(kind),
    }
}

/// One reply from every node's: a forwarded task's row at its owner goes
/// when the node running it lists it; modules are one row per hash.
fn merge(kind: StateKind, replies: Vec<pb::ListReply>) -> pb::ListReply {
    let mut out = pb::ListReply {
        kind: kind as i32,
        ..Default::default()
    };
    let mut modules: BTreeMap<String, pb::ModuleRow> = BTreeMap::new();
    for r in replies {
        out.tasks.extend(r.tasks);
        out.actors.extend(r.actors);
        out.objects.extend(r.objects);
        out.groups.extend(r.groups);
        for m in r.modules {
            let Some(info) = &m.module else { continue };
            modules
                .entry(info.hash.clone())
                .and_modify(|row| row.node_ids.extend(m.node_ids.iter().cloned()))
                .or_insert(m);
        }
    }
    let elsewhere: HashSet<u64> = out
        .tasks
        .iter()
        .filter(|t| t.state != "forwarded")
        .map(|t| t.task_id)
        .collect();
    out.tasks
        .retain(|t| t.state != "forwarded" || !elsewhere.contains(&t.task_id));
    out.tasks.sort_by_key(|t| (t.task_id, t.attempt));
    out.actors.sort_by_key(|a| a.actor_id);
    out.objects
        .sort_by(|a, b| (a.object_id, &a.node_id).cmp(&(b.object_id, &b.node_id)));
    out.groups
        .sort_by_key(|g| (g.placement_group_id, g.bundle_index));
    out.modules = modules.into_values().collect();
    out
}

/// Keeps the rows matching `filters`, at most `limit`; answers how many matched.
fn filter_and_limit(reply: &mut pb::ListReply, filters: &Filters, limit: usize) -> usize {
    fn keep<T: filter::Fields>(rows: &mut Vec<T>, filters: &Filters, limit: usize) -> usize {
        rows.retain(|r| filters.matches(r));
        let total = rows.len();
        rows.truncate(limit);
        total
    }
    keep(&mut reply.nodes, filters, limit)
        + keep(&mut reply.tasks, filters, limit)
        + keep(&mut reply.actors, filters, limit)
        + keep(&mut reply.objects, filters, limit)
        + keep(&mut reply.groups, filters, limit)
        + keep(&mut reply.jobs, filters, limit)
        + keep(&mut reply.modules, filters, limit)
}

fn summarize(reply: &pb::ListReply) -> Vec<pb::SummaryRow> {
    let mut rows: BTreeMap<String, pb::SummaryRow> = BTreeMap::new();
    let mut add = |key: String, state: &str, bytes: u64| {
        let row = rows.entry(key.clone()).or_insert_with(|| pb::SummaryRow {
            key,
            ..Default::default()
        });
        let state = state.split(':').next().unwrap_or(state).to_string();
        *row.by_state.entry(state).or_default() += 1;
        row.total += 1;
        row.bytes += bytes;
    };
    for t in &reply.tasks {
        add(format!("{} {}", short(&t.module), t.function), &t.state, 0);
    }
    for a in &reply.actors {
        add(format!("{} {}", short(&a.module), a.class), &a.state, 0);
    }
    for o in &reply.objects {
        add(o.state.clone(), &o.state, o.size);
    }
    rows.into_values().collect()
}

fn short(hash: &str) -> &str {
    &hash[..hash.len().min(12)]
}
