//! This node's own rows of each kind (what it answers `PeerState.LocalState`).

use pb::StateKind;
use reef_proto as pb;

use super::filter::Filters;
use crate::node::Node;

/// The rows of `kind` this node holds that match `filters`, all of them.
pub fn local(node: &Node, kind: StateKind, filters: &Filters) -> pb::ListReply {
    let mut reply = pb::ListReply {
        kind: kind as i32,
        ..Default::default()
    };
    let here = || node.id.clone();
    match kind {
        StateKind::Tasks => {
            let mut tasks: Vec<pb::TaskInfo> = node
                .tasks
                .history()
                .rows()
                .into_iter()
                .map(|t| pb::TaskInfo {
                    task_id: t.return_id,
                    module: t.module,
                    function: t.function,
                    state: if t.error.is_some() {
                        "failed"
                    } else {
                        "finished"
                    }
                    .into(),
                    node_id: here(),
                    attempt: t.attempt,
                    tenant: t.tenant.to_wire(),
                    error_code: t
                        .error
                        .as_ref()
                        .map(|(code, _)| code.as_str_name().to_string())
                        .unwrap_or_default(),
                    error_message: t.error.map(|(_, m)| m).unwrap_or_default(),
                    started_at_ms: t.started_at_us / 1000,
                    ended_at_ms: t.ended_at_us / 1000,
                    started_at_us: t.running_at_us,
                    ended_at_us: t.ended_at_us,
                })
                .collect();
            tasks.extend(node.tasks.table().rows().into_iter().map(|t| pb::TaskInfo {
                task_id: t.return_id,
                module: t.module,
                function: t.function,
                state: t.state.into(),
                node_id: here(),
                attempt: t.attempt,
                tenant: t.tenant.to_wire(),
                ..Default::default()
            }));
            tasks.extend(node.objects.forwarded_tasks().into_iter().map(
                |(task_id, module, function, attempt, tenant)| pb::TaskInfo {
                    task_id,
                    module,
                    function,
                    state: "forwarded".into(),
                    node_id: here(),
                    attempt,
                    tenant: tenant.to_wire(),
                    ..Default::default()
                },
            ));
            reply.tasks = tasks.into_iter().filter(|r| filters.matches(r)).collect();
        }
        StateKind::Actors => {
            reply.actors = node
                .actors
                .rows()
                .into_iter()
                .map(|a| pb::ActorInfo {
                    actor_id: a.id,
                    name: a.name,
                    module: a.module,
                    class: a.class,
                    state: a.state,
                    node_id: here(),
                    tenant: a.tenant.to_wire(),
                })
                .filter(|r| filters.matches(r))
                .collect();
        }
        StateKind::Objects => {
            reply.objects = node
                .store()
                .rows()
                .into_iter()
                .map(|o| pb::ObjectInfo {
                    object_id: o.id,
                    size: o.size,
                    state: o.state.into(),
                    refs: o.refs,
                    node_id: here(),
                    owner_index: reef_core::ids::ObjectId(o.id).owner_index(),
                    tenants: node
                        .objects
                        .owners()
                        .of(o.id)
                        .iter()
                        .map(|t| t.to_wire())
                        .collect(),
                })
                .filter(|r| filters.matches(r))
                .collect();
        }
        StateKind::Groups => {
            reply.groups = node
                .bundles
                .rows()
                .into_iter()
                .map(|(group, index, resources)| pb::BundleInfo {
                    tenant: node.bundles.tenant_of(group).unwrap_or_default(),
                    placement_group_id: group,
                    bundle_index: index,
                    node_id: here(),
                    resources: resources
                        .into_iter()
                        .map(|(name, total)| pb::ResourceUsage {
                            name,
                            total,
                            available: 0.0,
                        })
                        .collect(),
                })
                .filter(|r| filters.matches(r))
                .collect();
        }
        StateKind::Modules => {
            reply.modules = node
                .registry
                .list()
                .iter()
                .map(|m| pb::ModuleRow {
                    module: Some(m.to_proto()),
                    node_ids: vec![here()],
                })
                .collect();
        }
        // Answered by the node asked (the view, the control plane).
        StateKind::Nodes | StateKind::Jobs | StateKind::Unspecified => {}
    }
    reply
}
