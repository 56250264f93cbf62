//! What `host status` shows.

use reef_proto as pb;

use crate::node::Node;
use crate::rpc::service::module_info;

pub fn status(node: &Node) -> pb::StatusReply {
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
    let stats = node.store.stats();
    pb::StatusReply {
        nodes: vec![pb::NodeStatus {
            node_id: node.id.clone(),
            address: format!("127.0.0.1:{}", node.config.port),
            state: if node.is_stopping() {
                "stopping"
            } else {
                "alive"
            }
            .into(),
            resources,
        }],
        tasks: node
            .tasks
            .rows()
            .into_iter()
            .map(|t| pb::TaskSummary {
                return_id: t.return_id,
                module: t.module,
                function: t.function,
                state: t.state.into(),
            })
            .collect(),
        actors: node
            .actors
            .rows()
            .into_iter()
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
        modules: node
            .registry
            .list()
            .iter()
            .map(|m| module_info(m))
            .collect(),
    }
}
