//! Placement groups on this node.
//!
//! The control plane places a group's bundles and asks each chosen node to
//! reserve them (`Peer.ReserveBundles`, all or nothing). A reserved bundle is
//! a resource pool of its own, carved out of the node's: tasks and actors
//! scheduled into it (`Strategy::PlacementGroup`) take their resources from
//! the bundle, never from the rest of the node, and nothing else can use
//! them. Removing the group (`Peer.ReleaseBundles`) gives the resources back
//! and ends what runs in it: its tasks and actors fail with
//! PLACEMENT_GROUP_REMOVED.
//!
//! Drivers reach the control plane's group calls through any node (the
//! `PlacementGroups` service, proxied here), so they need not know the head.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use reef_core::TenantId;
use reef_proto as pb;
use tokio_util::sync::CancellationToken;

use super::{from_map, Membership};
use crate::error::{ErrorCode, ReefError, ReefResult};
use crate::placement::{group_removed, GroupFacts, Strategy};
use crate::scheduler::{Permit, Resources, Scheduler};

/// A bundle reserved here: group, bundle index, its resources by name.
pub type BundleRow = (u64, u32, Vec<(String, f64)>);

/// A group's bundles reserved on this node.
pub struct GroupHere {
    /// The node's resources the bundles hold (given back on drop).
    _reserved: Permit,
    /// One pool per bundle index placed here.
    pools: HashMap<u32, Arc<Scheduler>>,
    /// Cancelled when the group is removed: what runs in it stops.
    removed: CancellationToken,
}

/// Where a task or actor takes its resources from.
pub struct Pool {
    pub scheduler: Arc<Scheduler>,
    /// Set for work in a placement group: cancelled when the group goes.
    pub removed: Option<CancellationToken>,
}

/// The placement groups this node knows: bundles reserved here, and groups
/// as the control plane last answered through this node.
pub struct Bundles {
    scheduler: Arc<Scheduler>,
    cluster: Arc<Membership>,
    /// Bundles reserved here, by group id.
    here: Mutex<HashMap<u64, GroupHere>>,
    /// Groups as the control plane last answered through this node (the
    /// pushed view can lag behind a driver's create-and-wait).
    known: Mutex<HashMap<u64, pb::PlacementGroupInfo>>,
}

impl Bundles {
    /// Bundles are carved out of `scheduler`, the node's own pool.
    pub fn new(scheduler: Arc<Scheduler>, cluster: Arc<Membership>) -> Self {
        Bundles {
            scheduler,
            cluster,
            here: Mutex::default(),
            known: Mutex::default(),
        }
    }

    /// The bundles reserved here: group, bundle index, the resources it holds.
    pub fn rows(&self) -> Vec<BundleRow> {
        let here = self.here.lock().unwrap();
        let mut rows: Vec<_> = here
            .iter()
            .flat_map(|(group, g)| {
                g.pools
                    .iter()
                    .map(|(index, pool)| (*group, *index, pool.total().rows()))
            })
            .collect();
        rows.sort_by_key(|r| (r.0, r.1));
        rows
    }

    /// Reserves placement-group bundles here, all or none (asked by the
    /// control plane). The resources stay held until `release`.
    pub fn reserve(&self, bundles: Vec<pb::BundleReservation>) -> ReefResult<()> {
        let Some(first) = bundles.first() else {
            return Ok(());
        };
        let group = first.placement_group_id;
        let mut sum = Resources::default();
        let mut pools = HashMap::new();
        for b in &bundles {
            let r = from_map(&b.resources.clone().unwrap_or_default());
            if !(r.cpus.is_finite() && r.cpus >= 0.0)
                || r.custom.values().any(|v| !(v.is_finite() && *v >= 0.0))
            {
                return Err(ReefError::new(
                    ErrorCode::BadArgument,
                    format!(
                        "bundle {} of group {group}: resources must be non-negative",
                        b.bundle_index
                    ),
                ));
            }
            sum.cpus += r.cpus;
            sum.memory += r.memory;
            for (k, v) in &r.custom {
                *sum.custom.entry(k.clone()).or_default() += v;
            }
            pools.insert(b.bundle_index, Scheduler::new(r));
        }
        let reserved = self.scheduler.try_acquire(&sum).ok_or_else(|| {
            ReefError::new(
                ErrorCode::Infeasible,
                format!(
                    "node {} has {:?} free, bundles need {sum:?}",
                    self.cluster.node_id(),
                    self.scheduler.available()
                ),
            )
        })?;
        let mut here = self.here.lock().unwrap();
        let entry = here.entry(group).or_insert_with(|| GroupHere {
            _reserved: reserved,
            pools: HashMap::new(),
            removed: CancellationToken::new(),
        });
        entry.pools.extend(pools);
        Ok(())
    }

    /// The bundles reserved here (reported to a restarted control plane).
    pub fn held(&self) -> Vec<pb::BundleReservation> {
        let here = self.here.lock().unwrap();
        let mut held: Vec<pb::BundleReservation> = here
            .iter()
            .flat_map(|(group, h)| {
                h.pools.keys().map(|index| pb::BundleReservation {
                    placement_group_id: *group,
                    bundle_index: *index,
                    resources: None,
                })
            })
            .collect();
        held.sort_by_key(|b| (b.placement_group_id, b.bundle_index));
        held
    }

    /// Gives back what a placement group reserved here and ends the tasks
    /// and actors running in it.
    pub fn release(&self, group: u64) {
        let here = self.here.lock().unwrap().remove(&group);
        if let Some(here) = here {
            here.removed.cancel();
        }
        self.forget(group);
    }

    /// A group was removed (here or through this node): work for it fails
    /// at once, whatever the view still shows.
    pub fn forget(&self, group: u64) {
        let mut known = self.known.lock().unwrap();
        let info = known
            .entry(group)
            .or_insert_with(|| pb::PlacementGroupInfo {
                id: group,
                ..Default::default()
            });
        info.state = pb::PlacementGroupState::PgRemoved as i32;
    }

    /// Remembers a group's state from a control-plane reply.
    pub fn note(&self, info: &pb::PlacementGroupInfo) {
        self.known.lock().unwrap().insert(info.id, info.clone());
    }

    /// The pool work with `strategy` takes `request` from.
    pub fn pool_for(&self, strategy: &Strategy, request: &Resources) -> ReefResult<Pool> {
        let Strategy::PlacementGroup { group, bundle } = strategy else {
            if !self.scheduler.feasible(request) {
                return Err(ReefError::new(
                    ErrorCode::Infeasible,
                    format!(
                        "no node can ever satisfy {request:?}: this node has {:?} in total",
                        self.scheduler.total()
                    ),
                ));
            }
            return Ok(Pool {
                scheduler: self.scheduler.clone(),
                removed: None,
            });
        };
        let groups = self.here.lock().unwrap();
        let node_id = self.cluster.node_id();
        let here = groups.get(group).ok_or_else(|| {
            if self
                .info(*group)
                .is_some_and(|g| g.state == pb::PlacementGroupState::PgRemoved as i32)
            {
                return group_removed(*group);
            }
            ReefError::new(
                ErrorCode::UnknownPlacementGroup,
                format!("placement group {group} has no bundle on node {node_id}"),
            )
        })?;
        let pool = match bundle {
            Some(i) => here.pools.get(i).ok_or_else(|| {
                ReefError::new(
                    ErrorCode::UnknownPlacementGroup,
                    format!("bundle {i} of placement group {group} is not on node {node_id}"),
                )
            })?,
            None => {
                let mut indexes: Vec<&u32> = here.pools.keys().collect();
                indexes.sort();
                // The fitting bundle with the most free now, else the first.
                let best = indexes
                    .into_iter()
                    .filter(|i| here.pools[i].feasible(request))
                    .max_by(|a, b| {
                        here.pools[a]
                            .available()
                            .cpus
                            .total_cmp(&here.pools[b].available().cpus)
                    });
                match best {
                    Some(i) => &here.pools[i],
                    None => {
                        return Err(ReefError::new(
                            ErrorCode::Infeasible,
                            format!(
                                "no bundle of placement group {group} on node {node_id} can hold {request:?}"
                            ),
                        ))
                    }
                }
            }
        };
        if !pool.feasible(request) {
            return Err(ReefError::new(
                ErrorCode::Infeasible,
                format!(
                    "bundle {bundle:?} of placement group {group} holds {:?}, the call needs {request:?}",
                    pool.total()
                ),
            ));
        }
        Ok(Pool {
            scheduler: pool.clone(),
            removed: Some(here.removed.clone()),
        })
    }

    /// What placement needs to know of a group (see `placement::place`).
    pub fn facts(&self, group: u64, bundle: Option<u32>, request: &Resources) -> GroupFacts {
        let held_here = self
            .here
            .lock()
            .unwrap()
            .get(&group)
            .is_some_and(|g| match bundle {
                Some(i) => g.pools.contains_key(&i),
                None => g.pools.values().any(|p| p.feasible(request)),
            });
        GroupFacts {
            held_here,
            info: if held_here { None } else { self.info(group) },
        }
    }

    /// Refuses work of `tenant` in another tenant's placement group, as a
    /// made-up group id is refused (a group this node does not know yet
    /// fails where the work is placed, as an unknown one).
    pub fn check_tenant(&self, strategy: &Strategy, tenant: &TenantId) -> ReefResult<()> {
        let Strategy::PlacementGroup { group, .. } = strategy else {
            return Ok(());
        };
        match self.tenant_of(*group) {
            Some(owner) if TenantId::from_wire(&owner) != *tenant => Err(ReefError::new(
                ErrorCode::UnknownPlacementGroup,
                format!("placement group {group} does not exist"),
            )),
            _ => Ok(()),
        }
    }

    /// Whose group `group` is (as on the wire), if this node knows it.
    pub fn tenant_of(&self, group: u64) -> Option<String> {
        self.info(group).map(|info| info.tenant)
    }

    /// A group as the pushed view or a recent reply through this node shows it.
    fn info(&self, group: u64) -> Option<pb::PlacementGroupInfo> {
        // Groups only move forward (pending, created, removed or failed):
        // of the view and a recent reply, the later state wins.
        let rank = |g: &pb::PlacementGroupInfo| match pb::PlacementGroupState::try_from(g.state) {
            Ok(pb::PlacementGroupState::PgCreated) => 1,
            Ok(pb::PlacementGroupState::PgRemoved | pb::PlacementGroupState::PgFailed) => 2,
            _ => 0,
        };
        let known = self.known.lock().unwrap().get(&group).cloned();
        let viewed = self
            .cluster
            .view()
            .placement_groups
            .iter()
            .find(|g| g.id == group)
            .cloned();
        match (known, viewed) {
            (Some(k), Some(v)) => Some(if rank(&v) >= rank(&k) { v } else { k }),
            (Some(g), None) | (None, Some(g)) => Some(g),
            (None, None) => None,
        }
    }
}
