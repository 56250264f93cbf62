//! The state API and logs as typed calls: what runs where in the whole
//! cluster (`host list|get|summary`), and logs of any task or actor.

use futures::{Stream, StreamExt};
use reef_proto as pb;
pub use reef_proto::{
    ActorInfo, BundleInfo, JobRow, LogLine, ModuleRow, NodeStatus, ObjectInfo, SummaryRow, TaskInfo,
};

use crate::cluster::Cluster;
use crate::error::{Error, Result};

/// Filters and a limit for a listing: `ListOptions::new().filter("state", "failed").limit(10)`.
/// Unknown keys are refused by the node (`BAD_ARGUMENT`, naming the known ones).
#[derive(Clone, Debug, Default)]
pub struct ListOptions {
    filters: Vec<(String, String)>,
    limit: Option<u32>,
}

impl ListOptions {
    pub fn new() -> Self {
        Self::default()
    }

    /// Keeps rows whose field `key` equals `value` (ids as `0x...` or decimal).
    pub fn filter(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.filters.push((key.into(), value.into()));
        self
    }

    /// At most `n` rows (default 100).
    pub fn limit(mut self, n: u32) -> Self {
        self.limit = Some(n);
        self
    }
}

/// Rows of a listing.
#[derive(Clone, Debug)]
pub struct Listing<T> {
    pub rows: Vec<T>,
    /// Rows that matched, before the limit.
    pub total: u64,
    /// Nodes that did not answer in time (their rows are missing).
    pub missing_nodes: Vec<String>,
}

/// What `summary` counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SummaryKind {
    /// By module and function.
    Tasks,
    /// By module and class.
    Actors,
    /// By state.
    Objects,
}

/// Counts by function, class or state, each split by state.
#[derive(Clone, Debug)]
pub struct Summary {
    pub rows: Vec<SummaryRow>,
    pub missing_nodes: Vec<String>,
}

impl Cluster {
    async fn list(&self, kind: pb::StateKind, options: &ListOptions) -> Result<pb::ListReply> {
        let request = pb::ListRequest {
            kind: kind as i32,
            filters: options
                .filters
                .iter()
                .map(|(key, value)| pb::StateFilter {
                    key: key.clone(),
                    value: value.clone(),
                })
                .collect(),
            limit: options.limit.unwrap_or(0),
            local_only: false,
        };
        Ok(self.node_client().await?.list(request).await?.into_inner())
    }

    pub async fn list_nodes(&self, options: &ListOptions) -> Result<Listing<NodeStatus>> {
        let r = self.list(pb::StateKind::Nodes, options).await?;
        Ok(listing(r.nodes, r.total, r.missing_nodes))
    }

    /// Tasks running, waiting or recently finished (each node keeps its last
    /// 10,000 finished attempts), on every node.
    pub async fn list_tasks(&self, options: &ListOptions) -> Result<Listing<TaskInfo>> {
        let r = self.list(pb::StateKind::Tasks, options).await?;
        Ok(listing(r.tasks, r.total, r.missing_nodes))
    }

    pub async fn list_actors(&self, options: &ListOptions) -> Result<Listing<ActorInfo>> {
        let r = self.list(pb::StateKind::Actors, options).await?;
        Ok(listing(r.actors, r.total, r.missing_nodes))
    }

    /// Object entries of every node (a copy on each node holding one).
    pub async fn list_objects(&self, options: &ListOptions) -> Result<Listing<ObjectInfo>> {
        let r = self.list(pb::StateKind::Objects, options).await?;
        Ok(listing(r.objects, r.total, r.missing_nodes))
    }

    /// Placement-group bundles reserved on the nodes.
    pub async fn list_groups(&self, options: &ListOptions) -> Result<Listing<BundleInfo>> {
        let r = self.list(pb::StateKind::Groups, options).await?;
        Ok(listing(r.groups, r.total, r.missing_nodes))
    }

    pub async fn list_jobs(&self, options: &ListOptions) -> Result<Listing<JobRow>> {
        let r = self.list(pb::StateKind::Jobs, options).await?;
        Ok(listing(r.jobs, r.total, r.missing_nodes))
    }

    pub async fn list_modules(&self, options: &ListOptions) -> Result<Listing<ModuleRow>> {
        let r = self.list(pb::StateKind::Modules, options).await?;
        Ok(listing(r.modules, r.total, r.missing_nodes))
    }

    async fn get_state(&self, kind: pb::StateKind, id: u64) -> Result<pb::ListReply> {
        let request = pb::GetStateRequest {
            kind: kind as i32,
            id,
        };
        Ok(self
            .node_client()
            .await?
            .get_state(request)
            .await?
            .into_inner())
    }

    /// Every attempt of a task (by its result's id), wherever it ran;
    /// `UNKNOWN_OBJECT` when no node knows it.
    pub async fn get_task_info(&self, id: u64) -> Result<Vec<TaskInfo>> {
        Ok(self.get_state(pb::StateKind::Tasks, id).await?.tasks)
    }

    /// An actor, wherever it lives; `UNKNOWN_ACTOR` when no node has it.
    pub async fn get_actor_info(&self, id: u64) -> Result<ActorInfo> {
        let mut actors = self.get_state(pb::StateKind::Actors, id).await?.actors;
        Ok(actors.remove(0))
    }

    /// Every node's entry of an object; `UNKNOWN_OBJECT` when none has one.
    pub async fn get_object_info(&self, id: u64) -> Result<Vec<ObjectInfo>> {
        Ok(self.get_state(pb::StateKind::Objects, id).await?.objects)
    }

    pub async fn summary(&self, kind: SummaryKind) -> Result<Summary> {
        let kind = match kind {
            SummaryKind::Tasks => pb::StateKind::Tasks,
            SummaryKind::Actors => pb::StateKind::Actors,
            SummaryKind::Objects => pb::StateKind::Objects,
        };
        let r = self
            .node_client()
            .await?
            .summary(pb::SummaryRequest { kind: kind as i32 })
            .await?
            .into_inner();
        Ok(Summary {
            rows: r.rows,
            missing_nodes: r.missing_nodes,
        })
    }

    /// The lines of a task's, actor call's or actor's log (`id`), read from
    /// the node that ran it, in pages. With `follow`, the stream goes on as
    /// lines are written until the task or actor ends.
    pub async fn log_stream(
        &self,
        id: u64,
        follow: bool,
    ) -> Result<impl Stream<Item = Result<LogLine>> + Send + 'static> {
        let request = pb::ReadLogsRequest {
            id,
            follow,
            ..Default::default()
        };
        let chunks = self
            .node_client()
            .await?
            .read_logs(request)
            .await?
            .into_inner();
        Ok(chunks.flat_map(|chunk| {
            let lines: Vec<Result<LogLine>> = match chunk {
                Ok(c) => c.lines.into_iter().map(Ok).collect(),
                Err(status) => vec![Err(Error::from(status))],
            };
            futures::stream::iter(lines)
        }))
    }
}

fn listing<T>(rows: Vec<T>, total: u64, missing_nodes: Vec<String>) -> Listing<T> {
    Listing {
        rows,
        total,
        missing_nodes,
    }
}
