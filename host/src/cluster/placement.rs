//! Where a task runs: the two-level scheduling of the seeds. The node that
//! receives a task runs it when it fits here now; otherwise it forwards it
//! (spillback) to a node whose free resources fit, chosen from the cluster
//! view the control plane pushes. A task that fits no node's *total* fails
//! at once (INFEASIBLE); one that fits only later waits in a node's queue.

use reef_proto as pb;

use super::from_map;
use crate::error::{ErrorCode, ReefError, ReefResult};
use crate::node::Node;
use crate::scheduler::Resources;
use crate::tasks::ArgSpec;

pub use reef_core::Strategy;

/// The decision for one task.
#[derive(Debug)]
pub enum Placement {
    Local,
    Remote(Box<pb::NodeView>),
}

fn alive(n: &pb::NodeView) -> bool {
    n.state == pb::NodeState::Alive as i32
}

impl Node {
    /// Chooses where a task with `request` runs. `hops` counts how often it
    /// was forwarded already: forwarded work stays where it landed when it
    /// fits that node's total (it waits there), so nothing bounces around.
    pub fn place(
        &self,
        request: &Resources,
        strategy: &Strategy,
        args: &[ArgSpec],
        hops: u32,
    ) -> ReefResult<Placement> {
        if let Strategy::PlacementGroup { group, bundle } = strategy {
            return self.place_in_group(*group, *bundle, request);
        }
        let view = self.cluster.view();
        let others: Vec<&pb::NodeView> = view
            .nodes
            .iter()
            .filter(|n| alive(n) && n.node_id != self.id)
            .collect();
        let fits_here_ever = self.scheduler.feasible(request);
        if !self.cluster.is_clustered() || others.is_empty() {
            self.check_feasible(request)?;
            return Ok(Placement::Local);
        }
        let ever = |n: &pb::NodeView| {
            n.total
                .as_ref()
                .is_some_and(|t| request.fits_in(&from_map(t)))
        };
        let now = |n: &pb::NodeView| {
            n.available
                .as_ref()
                .is_some_and(|a| request.fits_in(&from_map(a)))
        };
        let fits_here_now =
            request.fits_in(&self.scheduler.available()) && self.scheduler.queued() == 0;

        if let Strategy::NodeAffinity { node_id, soft } = strategy {
            if node_id == &self.id {
                if fits_here_ever && (!soft || fits_here_now) {
                    return Ok(Placement::Local);
                }
            } else {
                match view.nodes.iter().find(|n| &n.node_id == node_id) {
                    Some(n) if alive(n) && ever(n) && (!soft || now(n)) => {
                        return Ok(Placement::Remote(Box::new(n.clone())))
                    }
                    found if !soft => {
                        return Err(match found {
                            None => ReefError::new(
                                ErrorCode::UnknownNode,
                                format!("node affinity: no node {node_id} in the cluster"),
                            ),
                            Some(n) if !alive(n) => ReefError::new(
                                ErrorCode::NodeDied,
                                format!(
                                    "node affinity: node {node_id} is dead ({})",
                                    n.death_reason
                                ),
                            ),
                            Some(_) => ReefError::new(
                                ErrorCode::Infeasible,
                                format!(
                                    "node affinity: node {node_id} can never satisfy {request:?}"
                                ),
                            ),
                        })
                    }
                    _ => {}
                }
            }
            if !soft && node_id == &self.id {
                self.check_feasible(request)?;
            }
        }
        if !fits_here_ever && !others.iter().any(|n| ever(n)) {
            return Err(ReefError::new(
                ErrorCode::Infeasible,
                format!(
                    "no node in the cluster can ever satisfy {request:?} ({} nodes alive)",
                    others.len() + 1
                ),
            ));
        }
        if hops > 0 && fits_here_ever {
            return Ok(Placement::Local);
        }
        if *strategy == Strategy::Spread {
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
            let pick = with_room[self.cluster.next_spread() % with_room.len()];
            return Ok(pick.map_or(Placement::Local, |n| Placement::Remote(Box::new(n.clone()))));
        }
        // Default: locality first — the node holding most argument bytes, if
        // it has room now and holds more than this node.
        let (here_bytes, best) = self.argument_bytes(args);
        if let Some((node_id, bytes)) = best {
            if bytes > here_bytes {
                if let Some(n) = others.iter().find(|n| n.node_id == node_id && now(n)) {
                    return Ok(Placement::Remote(Box::new((*n).clone())));
                }
            }
        }
        if fits_here_now {
            return Ok(Placement::Local);
        }
        // Spillback: the node with room and the most free CPU.
        let free_cpu = |n: &pb::NodeView| {
            n.available.as_ref().map_or(0.0, |a| from_map(a).cpus) - request.cpus
        };
        if let Some(n) = others
            .iter()
            .filter(|n| now(n))
            .max_by(|a, b| free_cpu(a).total_cmp(&free_cpu(b)))
        {
            return Ok(Placement::Remote(Box::new((*n).clone())));
        }
        if fits_here_ever {
            return Ok(Placement::Local);
        }
        let n = others.iter().find(|n| ever(n)).expect("checked above");
        Ok(Placement::Remote(Box::new((*n).clone())))
    }

    /// Bytes of the object arguments held here, and the other node holding
    /// the most (as far as this node knows: its own objects' copies).
    fn argument_bytes(&self, args: &[ArgSpec]) -> (u64, Option<(String, u64)>) {
        let mut here = 0;
        let mut elsewhere: std::collections::HashMap<String, u64> = Default::default();
        for arg in args {
            let ArgSpec::Object(id) = arg else { continue };
            if let Some(size) = self.store.local_size(*id) {
                here += size;
            } else if let Some((size, holders)) = self.store.remote_info(*id) {
                for h in holders {
                    *elsewhere.entry(h).or_default() += size;
                }
            }
        }
        (here, elsewhere.into_iter().max_by_key(|(_, b)| *b))
    }
}
