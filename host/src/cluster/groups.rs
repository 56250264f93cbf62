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
use std::sync::Arc;

use reef_proto as pb;
use tokio_util::sync::CancellationToken;

use super::from_map;
use super::placement::{Placement, Strategy};
use crate::error::{ErrorCode, ReefError, ReefResult};
use crate::node::Node;
use crate::scheduler::{Permit, Resources, Scheduler};

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

pub fn group_removed(group: u64) -> ReefError {
    ReefError::new(
        ErrorCode::PlacementGroupRemoved,
        format!("placement group {group} was removed"),
    )
}

impl Node {
    /// Reserves placement-group bundles here, all or none (asked by the
    /// control plane). The resources stay held until `release_bundles`.
    pub fn reserve_bundles(&self, bundles: Vec<pb::BundleReservation>) -> ReefResult<()> {
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
                    self.id,
                    self.scheduler.available()
                ),
            )
        })?;
        let mut groups = self.cluster.groups.lock().unwrap();
        let entry = groups.entry(group).or_insert_with(|| GroupHere {
            _reserved: reserved,
            pools: HashMap::new(),
            removed: CancellationToken::new(),
        });
        entry.pools.extend(pools);
        Ok(())
    }

    /// Gives back what a placement group reserved here and ends the tasks
    /// and actors running in it.
    pub fn release_bundles(&self, group: u64) {
        let here = self.cluster.groups.lock().unwrap().remove(&group);
        if let Some(here) = here {
            here.removed.cancel();
        }
        self.forget_group(group);
    }

    /// A group was removed (here or through this node): work for it fails
    /// at once, whatever the view still shows.
    pub fn forget_group(&self, group: u64) {
        let mut known = self.cluster.known_groups.lock().unwrap();
        if let Some(info) = known.get_mut(&group) {
            info.state = pb::PlacementGroupState::PgRemoved as i32;
        } else {
            known.insert(
                group,
                pb::PlacementGroupInfo {
                    id: group,
                    state: pb::PlacementGroupState::PgRemoved as i32,
                    ..Default::default()
                },
            );
        }
    }

    /// The pool a task or actor with `strategy` takes `request` from.
    pub fn pool_for(&self, strategy: &Strategy, request: &Resources) -> ReefResult<Pool> {
        let Strategy::PlacementGroup { group, bundle } = strategy else {
            self.check_feasible(request)?;
            return Ok(Pool {
                scheduler: self.scheduler.clone(),
                removed: None,
            });
        };
        let groups = self.cluster.groups.lock().unwrap();
        let here = groups.get(group).ok_or_else(|| {
            if self
                .group_info(*group)
                .is_ok_and(|g| g.state == pb::PlacementGroupState::PgRemoved as i32)
            {
                return group_removed(*group);
            }
            ReefError::new(
                ErrorCode::UnknownPlacementGroup,
                format!("placement group {group} has no bundle on node {}", self.id),
            )
        })?;
        let pool = match bundle {
            Some(i) => here.pools.get(i).ok_or_else(|| {
                ReefError::new(
                    ErrorCode::UnknownPlacementGroup,
                    format!(
                        "bundle {i} of placement group {group} is not on node {}",
                        self.id
                    ),
                )
            })?,
            None => {
                let mut indexes: Vec<&u32> = here.pools.keys().collect();
                indexes.sort();
                let fitting: Vec<&u32> = indexes
                    .into_iter()
                    .filter(|i| here.pools[i].feasible(request))
                    .collect();
                // The fitting bundle with the most free now, else the first.
                let best = fitting.iter().max_by(|a, b| {
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
                            "no bundle of placement group {group} on node {} can hold {request:?}",
                            self.id
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

    /// Where work scheduled into a placement group runs.
    pub(crate) fn place_in_group(
        &self,
        group: u64,
        bundle: Option<u32>,
        request: &Resources,
    ) -> ReefResult<Placement> {
        let held_here = {
            let groups = self.cluster.groups.lock().unwrap();
            groups.get(&group).is_some_and(|g| match bundle {
                Some(i) => g.pools.contains_key(&i),
                None => g.pools.values().any(|p| p.feasible(request)),
            })
        };
        if held_here {
            return Ok(Placement::Local);
        }
        let info = self.group_info(group)?;
        let state = pb::PlacementGroupState::try_from(info.state)
            .unwrap_or(pb::PlacementGroupState::Unspecified);
        match state {
            pb::PlacementGroupState::PgCreated => {}
            pb::PlacementGroupState::PgRemoved => return Err(group_removed(group)),
            other => {
                return Err(ReefError::new(
                    ErrorCode::UnknownPlacementGroup,
                    format!(
                        "placement group {group} is not ready ({}{}): wait for it first",
                        other.as_str_name(),
                        if info.error.is_empty() {
                            String::new()
                        } else {
                            format!(": {}", info.error)
                        }
                    ),
                ))
            }
        }
        let candidates: Vec<usize> = match bundle {
            Some(i) if (i as usize) < info.bundles.len() => vec![i as usize],
            Some(i) => {
                return Err(ReefError::new(
                    ErrorCode::BadArgument,
                    format!(
                        "placement group {group} has {} bundles, not bundle {i}",
                        info.bundles.len()
                    ),
                ))
            }
            None => (0..info.bundles.len())
                .filter(|i| request.fits_in(&from_map(&info.bundles[*i])))
                .collect(),
        };
        if candidates.is_empty() {
            return Err(ReefError::new(
                ErrorCode::Infeasible,
                format!("no bundle of placement group {group} can hold {request:?}"),
            ));
        }
        let pick = candidates[self.cluster.next_spread() % candidates.len()];
        let node_id = info.bundle_nodes.get(pick).cloned().unwrap_or_default();
        if node_id == self.id {
            return Ok(Placement::Local);
        }
        match self.cluster.node_view(&node_id) {
            Some(n) if n.state == pb::NodeState::Alive as i32 => Ok(Placement::Remote(Box::new(n))),
            _ => Err(ReefError::new(
                ErrorCode::NodeDied,
                format!(
                    "node {node_id}, which holds bundle {pick} of placement group {group}, is gone"
                ),
            )),
        }
    }

    /// A group as the pushed view or a recent reply through this node shows it.
    fn group_info(&self, group: u64) -> ReefResult<pb::PlacementGroupInfo> {
        // Groups only move forward (pending, created, removed or failed):
        // of the view and a recent reply, the later state wins.
        let rank = |g: &pb::PlacementGroupInfo| match pb::PlacementGroupState::try_from(g.state) {
            Ok(pb::PlacementGroupState::PgCreated) => 1,
            Ok(pb::PlacementGroupState::PgRemoved | pb::PlacementGroupState::PgFailed) => 2,
            _ => 0,
        };
        let known = self
            .cluster
            .known_groups
            .lock()
            .unwrap()
            .get(&group)
            .cloned();
        let viewed = self
            .cluster
            .view()
            .placement_groups
            .iter()
            .find(|g| g.id == group)
            .cloned();
        match (known, viewed) {
            (Some(k), Some(v)) => Ok(if rank(&v) >= rank(&k) { v } else { k }),
            (Some(g), None) | (None, Some(g)) => Ok(g),
            (None, None) => Err(ReefError::new(
                ErrorCode::UnknownPlacementGroup,
                format!("no placement group {group} in the cluster"),
            )),
        }
    }

    /// Remembers a group's state from a control-plane reply.
    pub fn note_group(&self, info: &pb::PlacementGroupInfo) {
        self.cluster
            .known_groups
            .lock()
            .unwrap()
            .insert(info.id, info.clone());
    }
}
