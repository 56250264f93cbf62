//! What `host status` shows: every node and its resources (cluster capacity
//! is not secret), and this node's tasks and actors as `viewer` may see them.

use reef_proto as pb;

use super::state::scope::Viewer;
use crate::node::Node;

pub fn status(node: &Node, viewer: &Viewer) -> pb::StatusReply {
    let stats = node.store().stats();
    let total = node.scheduler.total().rows();
    let available = node.scheduler.available().rows();
    let resources = total
        .into_iter()
        .map(|(name, total)| pb::ResourceUsage {
            available: available
                .iter()
                .find(|(n, _)| n == &name)
                .map(|(_, v)| *v)
                .unwrap_or(0.0),
            name,
            total,
        })
        .collect();
    let mut nodes = vec![pb::NodeStatus {
        node_id: node.id.clone(),
        address: node.address(),
        state: if node.is_stopping() {
            "stopping"
        } else {
            "alive"
        }
        .into(),
        resources,
        pending_tasks: node.scheduler.queued() as u64,
        running_tasks: node.tasks.table().len() as u64,
        store_used: stats.arena_used,
        store_capacity: stats.arena_capacity,
        head: node.config.head,
        this_node: true,
        bytes_pulled: node.objects.puller().map_or(0, |p| p.bytes_pulled()),
    }];
    // Every other node, as of the cluster view (their last heartbeat).
    for n in node
        .cluster
        .view()
        .nodes
        .iter()
        .filter(|n| n.node_id != node.id)
    {
        let total = n.total.clone().unwrap_or_default().amounts;
        let available = n.available.clone().unwrap_or_default().amounts;
        let mut resources: Vec<pb::ResourceUsage> = total
            .iter()
            .map(|(name, total)| pb::ResourceUsage {
                name: name.clone(),
                total: *total,
                available: available.get(name).copied().unwrap_or(0.0),
            })
            .collect();
        resources.sort_by(|a, b| a.name.cmp(&b.name));
        nodes.push(pb::NodeStatus {
            node_id: n.node_id.clone(),
            address: n.address.clone(),
            state: match pb::NodeState::try_from(n.state) {
                Ok(pb::NodeState::Alive) => "alive".to_string(),
                Ok(pb::NodeState::Draining) => "draining".to_string(),
                _ => format!("dead ({})", n.death_reason),
            },
            resources,
            pending_tasks: n.pending_tasks,
            running_tasks: n.running_tasks,
            store_used: n.store_used,
            store_capacity: n.store_capacity,
            head: n.head,
            this_node: false,
            bytes_pulled: 0,
        });
    }
    let mut tasks: Vec<pb::TaskSummary> = node
        .tasks
        .table()
        .rows()
        .into_iter()
        .filter(|t| viewer.sees_tenant(&t.tenant))
        .map(|t| pb::TaskSummary {
            return_id: t.return_id,
            module: t.module,
            function: t.function,
            state: t.state.into(),
            attempt: t.attempt,
        })
        .collect();
    let forwarded = node.objects.forwarded_tasks().into_iter();
    tasks.extend(forwarded.filter(|t| viewer.sees_tenant(&t.4)).map(
        |(return_id, module, function, attempt, _)| pb::TaskSummary {
            return_id,
            module,
            function,
            state: "forwarded".into(),
            attempt,
        },
    ));
    tasks.sort_by_key(|t| t.return_id);
    pb::StatusReply {
        nodes,
        tasks,
        actors: node
            .actors
            .rows()
            .into_iter()
            .filter(|a| viewer.sees_tenant(&a.tenant))
            .map(|a| pb::ActorSummary {
                actor_id: a.id,
                name: a.name,
                module: a.module,
                class: a.class,
                state: a.state,
            })
            .collect(),
        store: Some(pb::StoreUsage {
            arena_capacity: stats.arena_capacity,
            arena_used: stats.arena_used,
            spilled_bytes: stats.spilled_bytes,
            objects: stats.objects,
            inline_bytes: stats.inline_bytes,
        }),
        modules: node.registry.list().iter().map(|m| m.to_proto()).collect(),
    }
}
