//! Tenants' quotas on this node: the limits the cluster view carries (set
//! with `host tenant add|set`), what each tenant uses here, and the checks
//! the submission edge makes (`Tasks::submit`, `ActorManager::create`, the
//! driver session's puts, placement-group creation).
//!
//! Counts are per node, at the edge where work enters: the tasks a tenant
//! submitted through this node (its drivers' and its guests' running here)
//! and not finished, the actors created through it and alive, the bytes its
//! drivers put here and still hold, the placement groups created through it
//! and not removed. A cluster of N nodes lets a tenant reach N times a
//! count quota when it spreads its drivers; per-call quotas (CPUs, memory
//! limit) hold everywhere. Work submitted before a quota was set is not
//! counted against it.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock, Weak};

use bytesize::ByteSize;
use reef_core::TenantId;
use reef_proto as pb;
use tokio::sync::watch;

use crate::error::{ErrorCode, ReefError, ReefResult};
use crate::scheduler::{InstanceReservation, Scheduler, Share};
use crate::spec::CallOptions;

/// A quota counted per node (the others bound one request).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Counted {
    PendingTasks,
    ArenaBytes,
}

impl Counted {
    fn name(self) -> &'static str {
        match self {
            Counted::PendingTasks => "pending tasks",
            Counted::ArenaBytes => "arena bytes",
        }
    }

    fn limit(self, q: &pb::TenantQuotas) -> Option<u64> {
        match self {
            Counted::PendingTasks => q.max_pending_tasks,
            Counted::ArenaBytes => q.max_arena_bytes,
        }
    }
}

/// The quotas of every tenant, and their use on this node.
#[derive(Default)]
pub struct Quotas {
    limits: RwLock<HashMap<TenantId, pb::TenantQuotas>>,
    used: Mutex<HashMap<(TenantId, Counted), u64>>,
    /// Actors and placement groups created through this node, by tenant.
    actors: Mutex<HashMap<TenantId, Members>>,
    groups: Mutex<HashMap<TenantId, Members>>,
}

/// A tenant's actors or placement groups created through this node: those
/// that live, and how many creations passed the quota and are not recorded
/// yet (each holds a [`Slot`]), so that concurrent creations cannot pass it.
#[derive(Default)]
struct Members {
    live: HashSet<u64>,
    starting: usize,
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    Actors,
    Groups,
}

/// A creation's place under its tenant's actors or placement-groups quota:
/// recorded with the new id once it exists, given back when dropped
/// unrecorded (the creation failed). Holds nothing for a tenant without
/// that quota.
#[derive(Debug)]
#[must_use = "a slot is recorded with the new id, or given back when dropped"]
pub struct Slot {
    held: Option<(Weak<Quotas>, TenantId, Kind)>,
}

impl Slot {
    fn none() -> Slot {
        Slot { held: None }
    }

    /// The creation made `id`: counted as live from now on.
    pub fn record(mut self, id: u64) {
        if let Some((quotas, tenant, kind)) = self.held.take() {
            if let Some(quotas) = quotas.upgrade() {
                let mut members = quotas.members(kind).lock().unwrap();
                let m = members.entry(tenant).or_default();
                m.starting = m.starting.saturating_sub(1);
                m.live.insert(id);
            }
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some((quotas, tenant, kind)) = self.held.take() {
            if let Some(quotas) = quotas.upgrade() {
                let mut members = quotas.members(kind).lock().unwrap();
                if let Some(m) = members.get_mut(&tenant) {
                    m.starting = m.starting.saturating_sub(1);
                }
            }
        }
    }
}

/// `amount` of a counted quota, given back when dropped.
pub struct Charge {
    quotas: Weak<Quotas>,
    key: (TenantId, Counted),
    amount: u64,
}

impl Drop for Charge {
    fn drop(&mut self) {
        if let Some(quotas) = self.quotas.upgrade() {
            let mut used = quotas.used.lock().unwrap();
            if let Some(n) = used.get_mut(&self.key) {
                *n = n.saturating_sub(self.amount);
            }
        }
    }
}

/// The node's limits for a call that asks for none (`--default-memory-limit`,
/// `--default-cpu-time-ms`): a tenant's per-call maximum below them replaces
/// them.
#[derive(Clone, Copy, Debug)]
pub struct NodeDefaults {
    pub memory_limit: u64,
    pub cpu_time_ms: u64,
}

/// The error of a request over a quota.
pub fn exceeded(tenant: &TenantId, what: impl std::fmt::Display) -> ReefError {
    ReefError::new(
        ErrorCode::QuotaExceeded,
        format!("tenant {:?}: {what}", tenant.as_str()),
    )
}

impl Quotas {
    /// Quotas following the views of `views` (a node running alone has none).
    pub fn follow(mut views: watch::Receiver<Arc<pb::ClusterView>>) -> Arc<Quotas> {
        let quotas = Arc::new(Quotas::default());
        quotas.apply(&views.borrow_and_update());
        let weak = Arc::downgrade(&quotas);
        tokio::spawn(async move {
            while views.changed().await.is_ok() {
                let view = views.borrow_and_update().clone();
                let Some(quotas) = weak.upgrade() else {
                    return;
                };
                quotas.apply(&view);
            }
        });
        quotas
    }

    /// Takes the tenants' quotas of a view.
    pub fn apply(&self, view: &pb::ClusterView) {
        if view.version == 0 {
            return; // not joined yet
        }
        let limits = view
            .principals
            .iter()
            .filter(|p| !p.admin)
            .filter_map(|p| Some((TenantId::from_wire(&p.tenant), p.quotas?)))
            .collect();
        *self.limits.write().unwrap() = limits;
    }

    /// The quotas of `tenant` (`None`: unlimited in every way).
    fn of(&self, tenant: &TenantId) -> Option<pb::TenantQuotas> {
        let limits = self.limits.read().unwrap();
        if limits.is_empty() {
            return None;
        }
        limits.get(tenant).copied()
    }

    /// `tenant`'s weight (`host tenant add|set --weight`; 1 when not set)
    /// and so its share of the node's pools when tenants compete (see
    /// `scheduler`).
    pub fn share(&self, tenant: &TenantId) -> Share {
        let quotas = self.of(tenant);
        let weight = quotas.and_then(|q| q.weight).unwrap_or(1.0);
        Share::new(tenant.clone(), weight)
            .with_max_cpus_in_use(quotas.and_then(|q| q.max_cpus_in_use))
            .with_max_instances(quotas.and_then(|q| q.max_instances))
    }

    /// `tenant`'s `--max-log-bytes` (`None`: only the node's cap).
    pub fn max_log_bytes(&self, tenant: &TenantId) -> Option<u64> {
        self.of(tenant)?.max_log_bytes
    }

    /// `tenant`'s `--max-spill-bytes` (`None`: only the node's bound).
    pub fn max_spill_bytes(&self, tenant: &TenantId) -> Option<u64> {
        self.of(tenant)?.max_spill_bytes
    }

    /// Reserves one more instance of `tenant` in `pool` for an actor (an
    /// actor is not made to wait for its tenant's tasks: past the quota its
    /// creation fails); `None` for a tenant without that quota.
    pub fn reserve_instance(
        &self,
        tenant: &TenantId,
        pool: &Arc<Scheduler>,
    ) -> ReefResult<Option<InstanceReservation>> {
        let Some(max) = self.of(tenant).and_then(|q| q.max_instances) else {
            return Ok(None);
        };
        match pool.reserve_instance(&self.share(tenant), max) {
            Ok(reservation) => Ok(Some(reservation)),
            Err(in_use) => Err(count_exceeded(tenant, "instances", max, in_use as usize)),
        }
    }

    /// Checks one call's asks against the tenant's per-call quotas: the CPUs
    /// of `resources`, the memory limit and the CPU time (a call asking
    /// none gets the tenant's maximum when it is below the node's default,
    /// so every call of the tenant stops at it: an actor's calls each run
    /// with its creation's limits).
    pub fn check_call(
        &self,
        tenant: &TenantId,
        what: &str,
        cpus: f64,
        options: &mut CallOptions,
        defaults: &NodeDefaults,
    ) -> ReefResult<()> {
        let default_memory_limit = defaults.memory_limit;
        let Some(q) = self.of(tenant) else {
            return Ok(());
        };
        if let Some(max) = q.max_cpus {
            if cpus > max + reef_core::EPSILON {
                return Err(exceeded(
                    tenant,
                    format_args!("CPUs quota {max} exceeded ({what} asks for {cpus} CPUs)"),
                ));
            }
        }
        if let Some(max) = q.max_cpus_in_use {
            // More than the tenant may ever hold at once would wait forever.
            if cpus > max + reef_core::EPSILON {
                return Err(exceeded(
                    tenant,
                    format_args!(
                        "CPUs-in-use quota {max} exceeded ({what} asks for {cpus} CPUs, \
                         more than the tenant may ever hold at once)"
                    ),
                ));
            }
        }
        if let Some(max) = q.max_call_memory {
            match options.memory_limit {
                Some(asked) if asked > max => {
                    return Err(exceeded(
                        tenant,
                        format_args!(
                            "call memory quota {} exceeded ({what} asks for a memory limit of {})",
                            ByteSize(max),
                            ByteSize(asked)
                        ),
                    ))
                }
                Some(_) => {}
                None if default_memory_limit > max => options.memory_limit = Some(max),
                None => {}
            }
        }
        if let Some(max) = q.max_call_cpu_ms {
            match options.cpu_time_ms {
                Some(asked) if asked > max => {
                    return Err(exceeded(
                        tenant,
                        format_args!(
                            "call CPU time quota {max} ms exceeded ({what} asks for a CPU-time \
                             limit of {asked} ms)"
                        ),
                    ))
                }
                Some(_) => {}
                None if defaults.cpu_time_ms > max => options.cpu_time_ms = Some(max),
                None => {}
            }
        }
        Ok(())
    }

    /// Takes `amount` of a counted quota (`None` when the tenant has no
    /// such quota: nothing to give back).
    pub fn charge(
        self: &Arc<Self>,
        tenant: &TenantId,
        quota: Counted,
        amount: u64,
    ) -> ReefResult<Option<Charge>> {
        let Some(max) = self.of(tenant).and_then(|q| quota.limit(&q)) else {
            return Ok(None);
        };
        let key = (tenant.clone(), quota);
        let mut used = self.used.lock().unwrap();
        let in_use = used.get(&key).copied().unwrap_or(0);
        if in_use.saturating_add(amount) > max {
            return Err(exceeded(
                tenant,
                format_args!(
                    "{} quota {max} exceeded ({in_use} in use, {amount} more asked)",
                    quota.name()
                ),
            ));
        }
        used.insert(key.clone(), in_use + amount);
        Ok(Some(Charge {
            quotas: Arc::downgrade(self),
            key,
            amount,
        }))
    }

    fn members(&self, kind: Kind) -> &Mutex<HashMap<TenantId, Members>> {
        match kind {
            Kind::Actors => &self.actors,
            Kind::Groups => &self.groups,
        }
    }

    /// Takes a place for one more actor of `tenant` created here, counting
    /// those it created through this node that `alive` says still live and
    /// the creations under way; record the actor's id in the slot once the
    /// actor is known (`alive`), or drop it if the creation fails.
    pub fn take_actor(
        self: &Arc<Self>,
        tenant: &TenantId,
        alive: impl Fn(u64) -> bool,
    ) -> ReefResult<Slot> {
        let Some(max) = self.of(tenant).and_then(|q| q.max_actors) else {
            return Ok(Slot::none());
        };
        self.take(Kind::Actors, tenant, max, |live| {
            live.retain(|id| alive(*id))
        })
    }

    /// The placement groups `tenant` created through this node (to be
    /// checked for removal before [`Quotas::take_group`]), when it has a
    /// quota on them.
    pub fn groups_of(&self, tenant: &TenantId) -> Option<Vec<u64>> {
        self.of(tenant)?.max_placement_groups?;
        let groups = self.groups.lock().unwrap();
        Some(
            groups
                .get(tenant)
                .map(|g| g.live.iter().copied().collect())
                .unwrap_or_default(),
        )
    }

    /// Takes a place for one more placement group of `tenant`, after
    /// forgetting those in `removed`; record the group's id in the slot once
    /// created.
    pub fn take_group(self: &Arc<Self>, tenant: &TenantId, removed: &[u64]) -> ReefResult<Slot> {
        let Some(max) = self.of(tenant).and_then(|q| q.max_placement_groups) else {
            return Ok(Slot::none());
        };
        self.take(Kind::Groups, tenant, max, |live| {
            for id in removed {
                live.remove(id);
            }
        })
    }

    /// Checks and takes a place under a count quota, at once.
    fn take(
        self: &Arc<Self>,
        kind: Kind,
        tenant: &TenantId,
        max: u64,
        prune: impl FnOnce(&mut HashSet<u64>),
    ) -> ReefResult<Slot> {
        let what = match kind {
            Kind::Actors => "actors",
            Kind::Groups => "placement groups",
        };
        let mut members = self.members(kind).lock().unwrap();
        let m = members.entry(tenant.clone()).or_default();
        prune(&mut m.live);
        check_count(tenant, what, max, m.live.len() + m.starting)?;
        m.starting += 1;
        Ok(Slot {
            held: Some((Arc::downgrade(self), tenant.clone(), kind)),
        })
    }

    /// Forgets a removed placement group.
    pub fn remove_group(&self, id: u64) {
        for members in self.groups.lock().unwrap().values_mut() {
            members.live.remove(&id);
        }
    }
}

fn check_count(tenant: &TenantId, what: &str, max: u64, in_use: usize) -> ReefResult<()> {
    if in_use as u64 >= max {
        return Err(count_exceeded(tenant, what, max, in_use));
    }
    Ok(())
}

fn count_exceeded(tenant: &TenantId, what: &str, max: u64, in_use: usize) -> ReefError {
    exceeded(
        tenant,
        format_args!("{what} quota {max} exceeded ({in_use} in use, 1 more asked)"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEFAULTS: NodeDefaults = NodeDefaults {
        memory_limit: 256 << 20,
        cpu_time_ms: 60_000,
    };

    fn view(tenant: &str, quotas: pb::TenantQuotas) -> pb::ClusterView {
        pb::ClusterView {
            version: 1,
            principals: vec![pb::Principal {
                token_sha256: vec![0; 32].into(),
                admin: false,
                tenant: tenant.into(),
                quotas: Some(quotas),
            }],
            ..Default::default()
        }
    }

    #[test]
    fn counted_quotas_are_taken_and_given_back() {
        let quotas = Arc::new(Quotas::default());
        let b = TenantId::new("b");
        quotas.apply(&view(
            "b",
            pb::TenantQuotas {
                max_pending_tasks: Some(2),
                ..Default::default()
            },
        ));
        let one = quotas.charge(&b, Counted::PendingTasks, 1).unwrap();
        let _two = quotas.charge(&b, Counted::PendingTasks, 1).unwrap();
        let err = quotas.charge(&b, Counted::PendingTasks, 1).err().unwrap();
        assert_eq!(err.code, ErrorCode::QuotaExceeded);
        assert_eq!(
            err.message,
            r#"tenant "b": pending tasks quota 2 exceeded (2 in use, 1 more asked)"#
        );
        drop(one);
        assert!(quotas
            .charge(&b, Counted::PendingTasks, 1)
            .unwrap()
            .is_some());
        // Other tenants and other quotas are not limited.
        let a = TenantId::new("a");
        assert!(quotas
            .charge(&a, Counted::PendingTasks, 99)
            .unwrap()
            .is_none());
        assert!(quotas
            .charge(&b, Counted::ArenaBytes, 99)
            .unwrap()
            .is_none());
    }

    #[test]
    fn weights_come_with_the_quotas() {
        let quotas = Quotas::default();
        let b = TenantId::new("b");
        assert_eq!(quotas.share(&b).weight, 1.0);
        quotas.apply(&view(
            "b",
            pb::TenantQuotas {
                weight: Some(3.0),
                ..Default::default()
            },
        ));
        assert_eq!(quotas.share(&b), Share::new(b.clone(), 3.0));
        assert_eq!(quotas.share(&TenantId::new("a")).weight, 1.0);
    }

    #[test]
    fn per_call_quotas_refuse_impossible_asks() {
        let quotas = Quotas::default();
        let b = TenantId::new("b");
        quotas.apply(&view(
            "b",
            pb::TenantQuotas {
                max_cpus: Some(1.0),
                max_call_memory: Some(64 << 20),
                ..Default::default()
            },
        ));
        let mut options = CallOptions::default();
        let err = quotas
            .check_call(&b, "the task", 2.0, &mut options, &DEFAULTS)
            .unwrap_err();
        assert!(err.message.contains("CPUs quota 1 exceeded"), "{err}");
        // No limit asked: the tenant's maximum, below the node's default.
        quotas
            .check_call(&b, "the task", 1.0, &mut options, &DEFAULTS)
            .unwrap();
        assert_eq!(options.memory_limit, Some(64 << 20));
        options.memory_limit = Some(128 << 20);
        let err = quotas
            .check_call(&b, "the task", 1.0, &mut options, &DEFAULTS)
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::QuotaExceeded);
        assert!(err.message.contains("call memory quota 64.0 MiB"), "{err}");
    }

    #[test]
    fn a_call_cpu_time_quota_caps_every_call() {
        let quotas = Quotas::default();
        let b = TenantId::new("b");
        quotas.apply(&view(
            "b",
            pb::TenantQuotas {
                max_call_cpu_ms: Some(500),
                ..Default::default()
            },
        ));
        // No limit asked: the tenant's maximum, below the node's default.
        let mut options = CallOptions::default();
        quotas
            .check_call(&b, "the task", 1.0, &mut options, &DEFAULTS)
            .unwrap();
        assert_eq!(options.cpu_time_ms, Some(500));
        // Less is kept, more fails.
        options.cpu_time_ms = Some(100);
        quotas
            .check_call(&b, "the task", 1.0, &mut options, &DEFAULTS)
            .unwrap();
        assert_eq!(options.cpu_time_ms, Some(100));
        options.cpu_time_ms = Some(501);
        let err = quotas
            .check_call(&b, "the actor", 1.0, &mut options, &DEFAULTS)
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::QuotaExceeded);
        assert_eq!(
            err.message,
            r#"tenant "b": call CPU time quota 500 ms exceeded (the actor asks for a CPU-time limit of 501 ms)"#
        );
        // Another tenant keeps the node's default.
        let mut options = CallOptions::default();
        quotas
            .check_call(
                &TenantId::new("a"),
                "the task",
                1.0,
                &mut options,
                &DEFAULTS,
            )
            .unwrap();
        assert_eq!(options.cpu_time_ms, None);
    }

    #[test]
    fn actors_and_groups_are_counted_while_they_live() {
        let quotas = Arc::new(Quotas::default());
        let b = TenantId::new("b");
        quotas.apply(&view(
            "b",
            pb::TenantQuotas {
                max_actors: Some(1),
                max_placement_groups: Some(1),
                ..Default::default()
            },
        ));
        // A creation under way holds its place: a second one at the same
        // time is refused; a failed one gives its place back.
        let first = quotas.take_actor(&b, |_| true).unwrap();
        let err = quotas.take_actor(&b, |_| true).unwrap_err();
        assert!(
            err.message.contains("actors quota 1 exceeded (1 in use"),
            "{err}"
        );
        drop(first);
        quotas.take_actor(&b, |_| true).unwrap().record(7);
        assert!(quotas.take_actor(&b, |_| true).is_err());
        quotas.take_actor(&b, |id| id != 7).unwrap().record(8);

        let slot = quotas.take_group(&b, &[]).unwrap();
        assert!(quotas.take_group(&b, &[]).is_err());
        slot.record(3);
        assert_eq!(quotas.groups_of(&b), Some(vec![3]));
        assert!(quotas.take_group(&b, &[]).is_err());
        quotas.take_group(&b, &[3]).unwrap().record(4);
    }
}
