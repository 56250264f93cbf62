//! Where work runs: the two-level scheduling of Ray. The node that receives
//! a task runs it when it fits here now; otherwise it forwards it
//! (spillback) to a node whose free resources fit, chosen from the cluster
//! view the control plane pushes. A task that fits no node's *total* fails
//! at once (INFEASIBLE); one that fits only later waits in a node's queue.
//!
//! [`place`] is a pure function of what the node knows (its own resources,
//! the view, where the arguments are): the services gather those facts and
//! act on the [`Decision`]; the table of tests below covers every strategy.

use reef_proto as pb;

use crate::error::{ErrorCode, ReefError, ReefResult};
use crate::scheduler::Resources;

pub use reef_core::Strategy;

/// What is being placed.
#[derive(Debug)]
pub struct Request<'a> {
    pub resources: &'a Resources,
    pub strategy: &'a Strategy,
    /// How often the work was forwarded already: forwarded work stays where
    /// it landed when it fits that node's total (it waits there), so nothing
    /// bounces around.
    pub hops: u32,
    /// A counter that turns on every placement (round-robin for `Spread`).
    pub spread: usize,
}

/// What the deciding node knows about itself.
#[derive(Debug)]
pub struct Local<'a> {
    pub node_id: &'a str,
    pub total: Resources,
    /// What is free now (read only when `clustered`, as `queued` and the
    /// arguments' whereabouts are: left empty otherwise).
    pub available: Resources,
    /// Work waiting in this node's line: new work that fits the free
    /// resources would still queue behind it, so it does not fit *now*.
    pub queued: usize,
    /// Whether the node is part of a cluster (else everything runs here).
    pub clustered: bool,
    /// For a placement-group strategy: what is known of the group.
    pub group: Option<GroupFacts>,
}

/// A placement group as the deciding node knows it.
#[derive(Clone, Debug, Default)]
pub struct GroupFacts {
    /// This node holds a bundle the work can use (the one it names, or one
    /// it fits in).
    pub held_here: bool,
    /// The group as the view or a recent control-plane reply shows it.
    pub info: Option<pb::PlacementGroupInfo>,
}

/// Where the object arguments are: bytes on this node, and the other node
/// holding the most (as far as this node knows).
#[derive(Clone, Debug, Default)]
pub struct ArgumentBytes {
    pub here: u64,
    pub best_elsewhere: Option<(String, u64)>,
}

/// The outcome: run here (now, or in line), or forward to another node.
#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
    Local,
    Remote(Box<pb::NodeView>),
}

fn alive(n: &pb::NodeView) -> bool {
    n.state == pb::NodeState::Alive as i32
}

/// A resource map of the view as [`Resources`].
fn resources(m: Option<&pb::ResourceMap>) -> Option<Resources> {
    m.map(crate::cluster::from_map)
}

/// Chooses where work with `request` runs.
///
/// # Errors
/// `INFEASIBLE` when no node (or bundle) can ever hold it; for a hard node
/// affinity, `UNKNOWN_NODE` or `NODE_DIED` for a missing or dead node; for a
/// placement group, `PLACEMENT_GROUP_REMOVED`, `UNKNOWN_PLACEMENT_GROUP` (not
/// ready or unknown) or `BAD_ARGUMENT` (no such bundle).
pub fn place(
    request: &Request,
    local: &Local,
    view: &pb::ClusterView,
    args: &ArgumentBytes,
) -> ReefResult<Decision> {
    let need = request.resources;
    if let Strategy::PlacementGroup { group, bundle } = request.strategy {
        return place_in_group(*group, *bundle, request, local, view);
    }
    let others: Vec<&pb::NodeView> = view
        .nodes
        .iter()
        .filter(|n| alive(n) && n.node_id != local.node_id)
        .collect();
    let fits_here_ever = need.fits_in(&local.total);
    if !local.clustered || others.is_empty() {
        return if fits_here_ever {
            Ok(Decision::Local)
        } else {
            Err(infeasible_here(need, &local.total))
        };
    }
    let ever = |n: &pb::NodeView| resources(n.total.as_ref()).is_some_and(|t| need.fits_in(&t));
    let now = |n: &pb::NodeView| resources(n.available.as_ref()).is_some_and(|a| need.fits_in(&a));
    let fits_here_now = need.fits_in(&local.available) && local.queued == 0;
    let remote = |n: &pb::NodeView| Ok(Decision::Remote(Box::new(n.clone())));

    if let Strategy::NodeAffinity { node_id, soft } = request.strategy {
        if node_id == local.node_id {
            if fits_here_ever && (!soft || fits_here_now) {
                return Ok(Decision::Local);
            }
            if !soft {
                return Err(infeasible_here(need, &local.total));
            }
        } else {
            match view.nodes.iter().find(|n| &n.node_id == node_id) {
                Some(n) if alive(n) && ever(n) && (!soft || now(n)) => return remote(n),
                None if !soft => {
                    return Err(ReefError::new(
                        ErrorCode::UnknownNode,
                        format!("node affinity: no node {node_id} in the cluster"),
                    ))
                }
                Some(n) if !soft && !alive(n) => {
                    return Err(ReefError::new(
                        ErrorCode::NodeDied,
                        format!("node affinity: node {node_id} is dead ({})", n.death_reason),
                    ))
                }
                Some(_) if !soft => {
                    return Err(ReefError::new(
                        ErrorCode::Infeasible,
                        format!("node affinity: node {node_id} can never satisfy {need:?}"),
                    ))
                }
                // Soft: the default strategy below.
                _ => {}
            }
        }
    }
    if !fits_here_ever && !others.iter().any(|n| ever(n)) {
        return Err(ReefError::new(
            ErrorCode::Infeasible,
            format!(
                "no node in the cluster can ever satisfy {need:?} ({} nodes alive)",
                others.len() + 1
            ),
        ));
    }
    if request.hops > 0 && fits_here_ever {
        return Ok(Decision::Local);
    }
    if *request.strategy == Strategy::Spread {
        let mut with_room: Vec<Option<&pb::NodeView>> = Vec::new();
        if fits_here_now {
            with_room.push(None);
        }
        with_room.extend(others.iter().filter(|n| now(n)).map(|n| Some(*n)));
        if with_room.is_empty() {
            if fits_here_ever {
                with_room.push(None);
            }
            with_room.extend(others.iter().filter(|n| ever(n)).map(|n| Some(*n)));
        }
        return match with_room[request.spread % with_room.len()] {
            None => Ok(Decision::Local),
            Some(n) => remote(n),
        };
    }
    // Default: locality first — the node holding most argument bytes, if it
    // has room now and holds more than this node.
    if let Some((node_id, bytes)) = &args.best_elsewhere {
        if *bytes > args.here {
            if let Some(n) = others.iter().find(|n| &n.node_id == node_id && now(n)) {
                return remote(n);
            }
        }
    }
    if fits_here_now {
        return Ok(Decision::Local);
    }
    // Spillback: the node with room and the most free CPU; among nodes with
    // as much, round-robin. The view is a heartbeat old, so a burst placed
    // within one would otherwise all go to the same node.
    let free_cpu =
        |n: &pb::NodeView| resources(n.available.as_ref()).map_or(0.0, |a| a.cpus) - need.cpus;
    let with_room: Vec<&pb::NodeView> = others.iter().copied().filter(|n| now(n)).collect();
    if let Some(most) = with_room.iter().map(|n| free_cpu(n)).max_by(f64::total_cmp) {
        let best: Vec<&pb::NodeView> = with_room
            .into_iter()
            .filter(|n| free_cpu(n) == most)
            .collect();
        return remote(best[request.spread % best.len()]);
    }
    // Pending: no node has room now; wait in this node's line if it can
    // ever hold the work, else in the first node's that can.
    if fits_here_ever {
        return Ok(Decision::Local);
    }
    let n = others.iter().find(|n| ever(n)).expect("checked above");
    remote(n)
}

/// Whether a node of the cluster that has died could have run work needing
/// `need` with `strategy`: then a first attempt that no alive node can take
/// waits for one to join (its replacement, say) rather than failing
/// `INFEASIBLE` at once. Never for a placement group or a hard node
/// affinity: no node joining changes a bundle or a named node.
pub fn a_dead_node_could_run(
    need: &Resources,
    strategy: &Strategy,
    view: &pb::ClusterView,
) -> bool {
    let free = matches!(
        strategy,
        Strategy::Default | Strategy::Spread | Strategy::NodeAffinity { soft: true, .. }
    );
    free && view.nodes.iter().any(|n| {
        n.state == pb::NodeState::Dead as i32
            && resources(n.total.as_ref()).is_some_and(|t| need.fits_in(&t))
    })
}

fn infeasible_here(need: &Resources, total: &Resources) -> ReefError {
    ReefError::new(
        ErrorCode::Infeasible,
        format!("no node can ever satisfy {need:?}: this node has {total:?} in total"),
    )
}

pub fn group_removed(group: u64) -> ReefError {
    ReefError::new(
        ErrorCode::PlacementGroupRemoved,
        format!("placement group {group} was removed"),
    )
}

/// Where work scheduled into a placement group runs: on the node holding
/// the bundle it names, or one of the bundles it fits in (round-robin).
fn place_in_group(
    group: u64,
    bundle: Option<u32>,
    request: &Request,
    local: &Local,
    view: &pb::ClusterView,
) -> ReefResult<Decision> {
    let facts = local.group.clone().unwrap_or_default();
    if facts.held_here {
        return Ok(Decision::Local);
    }
    let info = facts.info.ok_or_else(|| {
        ReefError::new(
            ErrorCode::UnknownPlacementGroup,
            format!("no placement group {group} in the cluster"),
        )
    })?;
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
            .filter(|i| {
                request
                    .resources
                    .fits_in(&crate::cluster::from_map(&info.bundles[*i]))
            })
            .collect(),
    };
    if candidates.is_empty() {
        return Err(ReefError::new(
            ErrorCode::Infeasible,
            format!(
                "no bundle of placement group {group} can hold {:?}",
                request.resources
            ),
        ));
    }
    let pick = candidates[request.spread % candidates.len()];
    let node_id = info.bundle_nodes.get(pick).cloned().unwrap_or_default();
    if node_id == local.node_id {
        return Ok(Decision::Local);
    }
    match view.nodes.iter().find(|n| n.node_id == node_id) {
        Some(n) if alive(n) => Ok(Decision::Remote(Box::new(n.clone()))),
        _ => Err(ReefError::new(
            ErrorCode::NodeDied,
            format!(
                "node {node_id}, which holds bundle {pick} of placement group {group}, is gone"
            ),
        )),
    }
}

#[cfg(test)]
mod tests;
