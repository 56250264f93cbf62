//! Who may see which rows: the one place a caller's view of the state API,
//! of `host status` and of logs is decided. Admin and nodes see everything;
//! a tenant sees its own tasks and actors only (and the same answer for a
//! foreign id as for an unknown one). Rows are gathered whole from every
//! node (nodes ask each other with the node credential) and narrowed here,
//! on the node that received the request.

use reef_core::{Caller, TenantId};
use reef_proto as pb;

use crate::logs::{LogOwner, Target};
use crate::node::Node;

/// The caller of a state, status or logs request.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Viewer {
    /// `None`: sees everything (the admin, other nodes, the node's own
    /// in-process readers).
    tenant: Option<TenantId>,
}

impl Viewer {
    /// The caller of a request that passed the node's credential check. A
    /// request without a `Caller` (a server that does not tell callers
    /// apart) is the default tenant's, as its work is.
    pub fn of<T>(request: &tonic::Request<T>) -> Viewer {
        match request.extensions().get::<Caller>() {
            Some(Caller::Admin | Caller::Node) => Viewer::everything(),
            Some(Caller::Tenant(tenant)) => Viewer::tenant(tenant.clone()),
            None => Viewer::tenant(TenantId::default()),
        }
    }

    /// A viewer who sees every row.
    pub fn everything() -> Viewer {
        Viewer { tenant: None }
    }

    /// A viewer who sees `tenant`'s rows only.
    pub fn tenant(tenant: TenantId) -> Viewer {
        Viewer {
            tenant: Some(tenant),
        }
    }

    /// The tenant the view is narrowed to (`None`: everything).
    pub fn narrowed_to(&self) -> Option<&TenantId> {
        self.tenant.as_ref()
    }

    /// Whether a row of tenant `tenant` (as on the wire) is visible.
    pub fn sees(&self, tenant: &str) -> bool {
        match &self.tenant {
            None => true,
            Some(mine) => TenantId::from_wire(tenant) == *mine,
        }
    }

    /// Whether work of `tenant` is visible.
    pub fn sees_tenant(&self, tenant: &TenantId) -> bool {
        self.tenant.as_ref().is_none_or(|mine| mine == tenant)
    }

    /// Drops the rows the caller may not see. Tasks and actors carry their
    /// tenant, objects the tenants that may use them (as their owner knows
    /// them: a copy's row elsewhere is the admin's only), bundles their
    /// group's tenant, jobs their session's. Nodes carry none and stay
    /// visible; modules are narrowed by who may run them
    /// (`StateApi::scope_modules`, which asks `module_owners`).
    pub fn scope(&self, mut reply: pb::ListReply) -> pb::ListReply {
        if self.tenant.is_some() {
            reply.tasks.retain(|t| self.sees(&t.tenant));
            reply.actors.retain(|a| self.sees(&a.tenant));
            reply.groups.retain(|g| self.sees(&g.tenant));
            reply.jobs.retain(|j| self.sees(&j.tenant));
            reply
                .objects
                .retain(|o| o.tenants.iter().any(|t| self.sees(t)));
        }
        reply
    }

    /// Whether the caller may read the log of `id` held by `node`: the log
    /// of a task or an actor (or one of its calls) of the caller's tenant,
    /// as the log's stream records it (or, for a task that wrote nothing and
    /// so has no stream, its row: live, or in its tenant's bounded history).
    /// A log whose owner this node no longer knows is the admin's only.
    pub fn may_read_logs(&self, node: &Node, id: u64, target: Target) -> bool {
        if self.tenant.is_none() {
            return true;
        }
        let Some(owner) = node.logs.owner(id, target) else {
            return false;
        };
        let tenant = node.logs.tenant_of(owner).or_else(|| match owner {
            LogOwner::Task(task) => {
                let live = node.tasks.table().rows();
                let live = live.into_iter().find(|t| t.return_id == task);
                live.map(|t| t.tenant)
                    .or_else(|| node.tasks.history().tenant_of(task))
            }
            LogOwner::Actor(_) => None,
        });
        tenant.is_some_and(|t| self.sees_tenant(&t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply() -> pb::ListReply {
        pb::ListReply {
            tasks: vec![
                pb::TaskInfo {
                    task_id: 1,
                    tenant: String::new(),
                    ..Default::default()
                },
                pb::TaskInfo {
                    task_id: 2,
                    tenant: "team-a".into(),
                    ..Default::default()
                },
            ],
            actors: vec![pb::ActorInfo {
                actor_id: 3,
                tenant: "team-a".into(),
                ..Default::default()
            }],
            objects: vec![
                pb::ObjectInfo {
                    object_id: 4,
                    tenants: vec!["team-a".into(), String::new()],
                    ..Default::default()
                },
                pb::ObjectInfo {
                    object_id: 5,
                    ..Default::default()
                },
            ],
            ..Default::default()
        }
    }

    #[test]
    fn a_tenant_sees_its_own_rows_and_the_admin_all() {
        let a = Viewer::tenant(TenantId::new("team-a")).scope(reply());
        assert_eq!(a.tasks.iter().map(|t| t.task_id).collect::<Vec<_>>(), [2]);
        assert_eq!(a.actors.len(), 1);
        assert_eq!(
            a.objects.iter().map(|o| o.object_id).collect::<Vec<_>>(),
            [4]
        );
        let default = Viewer::tenant(TenantId::default()).scope(reply());
        assert_eq!(
            default.tasks.iter().map(|t| t.task_id).collect::<Vec<_>>(),
            [1]
        );
        assert!(default.actors.is_empty());
        assert_eq!(default.objects.len(), 1, "shared with the default tenant");
        let all = Viewer::everything().scope(reply());
        assert_eq!(
            (all.tasks.len(), all.actors.len(), all.objects.len()),
            (2, 1, 2)
        );
    }

    #[test]
    fn callers_map_to_their_view() {
        let of = |caller: Option<Caller>| {
            let mut request = tonic::Request::new(());
            if let Some(caller) = caller {
                request.extensions_mut().insert(caller);
            }
            Viewer::of(&request).tenant
        };
        assert_eq!(of(Some(Caller::Admin)), None);
        assert_eq!(of(Some(Caller::Node)), None);
        let b = TenantId::new("team-b");
        assert_eq!(of(Some(Caller::Tenant(b.clone()))), Some(b));
        assert_eq!(of(None), Some(TenantId::default()));
    }
}
