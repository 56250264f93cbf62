//! Membership: registration, heartbeats, draining, and what a node's death
//! does to the actors and placement groups on it.
//!
//! **Reconnecting.** A node whose heartbeat is answered `unknown` registers
//! again with the index it has (`RegisterNodeRequest.node_index`) and what
//! it holds (its live actors, its reserved bundles). The control plane
//! accepts it when it still knows that node alive under that index — a
//! record restored after the control plane restarted (`recover.rs`) — and
//! reconciles: the node's actors it does not report are dead, its groups
//! with a bundle it does not report are rescheduled, and bundles it holds
//! for groups that no longer exist are released. Any other node asking for
//! an index (declared dead meanwhile, unknown) is refused and must restart.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reef_proto::{
    HeartbeatReply, HeartbeatRequest, NodeState, NodeView, PlacementGroupState, RegisterNodeReply,
    RegisterNodeRequest,
};
use tonic::Status;

use super::state::{ActorEntry, NodeEntry, State, RESTARTING};
use super::{millis, Inner};
use crate::clock::now_millis;
use crate::status::{bad_argument, internal, reef_status, unknown_node};
use crate::tables::Counter;
use crate::tables::Resources;

/// A `ReleaseBundles` the control plane owes a node: (address, group id).
pub(crate) type Release = (String, u64);

impl Inner {
    pub(crate) async fn register_node(
        self: &Arc<Self>,
        req: RegisterNodeRequest,
    ) -> Result<RegisterNodeReply, Status> {
        if req.node_id.is_empty() {
            return Err(bad_argument("node_id is empty"));
        }
        if req.address.is_empty() {
            return Err(bad_argument(format!(
                "node {} has an empty address",
                req.node_id
            )));
        }
        let what = format!("node {}: total", req.node_id);
        let total = Resources::validated(&what, &req.total.clone().unwrap_or_default())
            .map_err(bad_argument)?;
        let available = match &req.available {
            Some(m) if !m.amounts.is_empty() => available_within(m, &total)
                .map_err(|e| bad_argument(format!("node {}: {e}", req.node_id)))?,
            _ => total.clone(),
        };
        if req.node_index != 0 {
            return self.reconnect_node(&req, total, available);
        }

        let counters = self.counters.clone();
        let index = tokio::task::spawn_blocking(move || counters.next(Counter::Node))
            .await
            .map_err(internal)??;
        let node_index =
            u32::try_from(index).map_err(|_| internal("node index space exhausted"))?;

        let (view, releases) = self.with_state(|st| {
            // The same id again is a restarted node: its previous
            // incarnation (and what ran there) is gone.
            let releases = match st.nodes.get(&req.node_id) {
                Some(old) if !old.is_dead() => st.kill_node(&req.node_id, "the node re-registered"),
                _ => Vec::new(),
            };
            // A node on the address of another one replaced it (a restarted
            // head, say): the old process is gone.
            let replaced: Vec<String> = st
                .nodes
                .values()
                .filter(|n| {
                    !n.is_dead() && n.view.address == req.address && n.view.node_id != req.node_id
                })
                .map(|n| n.view.node_id.clone())
                .collect();
            let mut releases = releases;
            for old in replaced {
                let reason = format!("replaced by node {} at {}", req.node_id, req.address);
                releases.extend(st.kill_node(&old, &reason));
            }
            if st.head.is_none() {
                st.head = Some(req.node_id.clone());
            }
            let head = st.head.as_deref() == Some(req.node_id.as_str());
            let now = now_millis();
            st.nodes.insert(
                req.node_id.clone(),
                NodeEntry {
                    view: NodeView {
                        node_id: req.node_id.clone(),
                        node_index,
                        address: req.address.clone(),
                        state: NodeState::Alive as i32,
                        last_heartbeat_ms: now,
                        head,
                        ..Default::default()
                    },
                    total,
                    reported: available,
                    credit: Resources::new(),
                    debit: Resources::new(),
                    last_seen: Instant::now(),
                    start_time_ms: now,
                    reconnecting: false,
                },
            );
            st.save_node(&req.node_id);
            st.bump();
            (st.view(), releases)
        });
        tracing::info!(node_id = %req.node_id, node_index, address = %req.address, "node registered");
        self.release_later(releases);
        Ok(RegisterNodeReply {
            node_index,
            heartbeat_interval_ms: millis(self.config.heartbeat_interval),
            node_timeout_ms: millis(self.config.node_timeout),
            view: Some(view),
        })
    }

    /// Liveness and load. A node that reports impossible resources is
    /// refused (`BAD_ARGUMENT`) and keeps its last good values, but the
    /// heartbeat still counts as a sign of life.
    pub(crate) fn heartbeat(&self, req: HeartbeatRequest) -> Result<HeartbeatReply, Status> {
        self.with_state(|st| {
            let Some(node) = st.nodes.get_mut(&req.node_id) else {
                return Ok(HeartbeatReply { unknown: true });
            };
            if node.is_dead() || node.reconnecting {
                return Ok(HeartbeatReply { unknown: true });
            }
            node.last_seen = Instant::now();
            node.view.last_heartbeat_ms = now_millis();
            if let Some(map) = &req.available {
                let available = available_within(map, &node.total).map_err(|e| {
                    bad_argument(format!(
                        "node {}: {e}; keeping its last reported resources",
                        req.node_id
                    ))
                })?;
                node.reported = available;
                node.credit = Resources::new();
                node.debit = Resources::new();
            }
            node.view.pending_tasks = req.pending_tasks;
            node.view.running_tasks = req.running_tasks;
            node.view.store_used = req.store_used;
            node.view.store_capacity = req.store_capacity;
            st.bump();
            Ok(HeartbeatReply { unknown: false })
        })
    }

    /// Stops new placements on the node; it stays in the view (heartbeats
    /// keep it there) until it stops and times out, or is marked dead.
    pub(crate) fn drain_node(&self, node_id: &str, reason: &str) -> Result<(), Status> {
        self.with_state(|st| {
            let node = st
                .nodes
                .get_mut(node_id)
                .ok_or_else(|| unknown_node(node_id))?;
            if node.is_dead() || node.state() == NodeState::Draining {
                return Ok(());
            }
            node.view.state = NodeState::Draining as i32;
            node.view.death_reason = format!("draining: {reason}");
            st.save_node(node_id);
            st.bump();
            tracing::info!(node_id, reason, "node draining");
            Ok(())
        })
    }

    /// Declares a node dead now (see [`State::kill_node`]).
    pub(crate) fn mark_dead(self: &Arc<Self>, node_id: &str, reason: &str) -> bool {
        let (known, releases) = self.with_state(|st| {
            let known = st.nodes.get(node_id).is_some_and(|n| !n.is_dead());
            (known, st.kill_node(node_id, reason))
        });
        self.release_later(releases);
        known
    }

    /// The failure detector's sweep: every node silent for longer than the
    /// node timeout is dead (but the head's own, see `is_head_node`).
    pub(crate) fn expire_silent_nodes(self: &Arc<Self>) {
        let timeout = self.config.node_timeout;
        let releases = self.with_state(|st| {
            let silent: Vec<(String, String)> = st
                .nodes
                .values()
                .filter(|n| !n.is_dead() && n.last_seen.elapsed() > timeout)
                .filter(|n| !self.is_head_node(&n.view.node_id))
                .map(|n| {
                    let silent_ms = n.last_seen.elapsed().as_millis();
                    let timeout_ms = timeout.as_millis();
                    let reason = if n.reconnecting {
                        format!("did not reconnect within {silent_ms} ms of the control plane's restart (node timeout {timeout_ms} ms)")
                    } else {
                        format!("no heartbeat for {silent_ms} ms (node timeout {timeout_ms} ms)")
                    };
                    (n.view.node_id.clone(), reason)
                })
                .collect();
            let mut releases = Vec::new();
            for (id, reason) in silent {
                releases.extend(st.kill_node(&id, &reason));
            }
            releases
        });
        self.release_later(releases);
    }

    /// Nodes silent for three heartbeats (and 300 ms) but not yet for the
    /// node timeout, not reconnecting and not being probed, as (node id,
    /// address): their ports are probed (see `probe` in `service.rs`).
    pub(crate) fn nodes_to_probe(&self) -> Vec<(String, String)> {
        if !self.config.probe_silent_nodes {
            return Vec::new();
        }
        let after = (self.config.heartbeat_interval * 3).max(Duration::from_millis(300));
        let candidates: Vec<(String, String)> = {
            let st = self.state.lock().unwrap_or_else(|e| e.into_inner());
            st.nodes
                .values()
                .filter(|n| !n.is_dead() && !n.reconnecting && n.last_seen.elapsed() > after)
                .filter(|n| !n.view.address.is_empty() && !self.is_head_node(&n.view.node_id))
                .map(|n| (n.view.node_id.clone(), n.view.address.clone()))
                .collect()
        };
        let mut probing = self.probing.lock().unwrap();
        candidates
            .into_iter()
            .filter(|(id, _)| probing.insert(id.clone()))
            .collect()
    }

    /// Marks a node dead whose probe says its process is gone, unless it
    /// spoke meanwhile.
    pub(crate) fn mark_silent_dead(self: &Arc<Self>, node_id: &str, why: &str) {
        let after = (self.config.heartbeat_interval * 3).max(Duration::from_millis(300));
        let releases = self.with_state(|st| {
            let silent_ms = match st.nodes.get(node_id) {
                Some(n) if !n.is_dead() && n.last_seen.elapsed() > after => {
                    n.last_seen.elapsed().as_millis()
                }
                _ => return Vec::new(),
            };
            let reason = format!("no heartbeat for {silent_ms} ms and {why}");
            st.kill_node(node_id, &reason)
        });
        self.release_later(releases);
    }

    /// A node that already has an index registers again (see the module
    /// docs): accepted only if it is known alive under that index.
    fn reconnect_node(
        self: &Arc<Self>,
        req: &RegisterNodeRequest,
        total: Resources,
        available: Resources,
    ) -> Result<RegisterNodeReply, Status> {
        let (view, releases) = self.with_state(|st| {
            let known = st.nodes.get(&req.node_id).is_some_and(|n| {
                !n.is_dead() && n.view.node_index == req.node_index
            });
            if !known {
                return Err(reef_status(
                    tonic::Code::FailedPrecondition,
                    reef_proto::ErrorCode::NodeDied,
                    format!(
                        "node {} (index {}) is not alive in the control plane (declared dead, or unknown to it): it must restart to join again",
                        req.node_id, req.node_index
                    ),
                ));
            }
            let releases = st.reconcile_node(req);
            let node = st.nodes.get_mut(&req.node_id).expect("checked above");
            node.view.address = req.address.clone();
            node.view.last_heartbeat_ms = now_millis();
            node.total = total;
            node.reported = available;
            node.credit = Resources::new();
            node.debit = Resources::new();
            node.last_seen = Instant::now();
            node.reconnecting = false;
            st.save_node(&req.node_id);
            st.bump();
            Ok((st.view(), releases))
        })?;
        tracing::info!(node_id = %req.node_id, node_index = req.node_index, actors = req.actors.len(), bundles = req.bundles.len(), "node reconnected");
        self.release_later(releases);
        Ok(RegisterNodeReply {
            node_index: req.node_index,
            heartbeat_interval_ms: millis(self.config.heartbeat_interval),
            node_timeout_ms: millis(self.config.node_timeout),
            view: Some(view),
        })
    }

    /// Sends the owed `ReleaseBundles` calls in the background; their
    /// groups are not placed again until the calls are done (see
    /// `State::releasing`).
    pub(crate) fn release_later(self: &Arc<Self>, releases: Vec<Release>) {
        if releases.is_empty() {
            return;
        }
        self.with_state(|st| {
            for (_, group) in &releases {
                *st.releasing.entry(*group).or_default() += 1;
            }
        });
        for (address, group) in releases {
            let inner = self.clone();
            tokio::spawn(async move {
                if let Err(e) = inner.peers.release(&address, group).await {
                    tracing::warn!(%address, group, error = %e, "releasing bundles failed");
                }
                inner.with_state(|st| {
                    if let Some(n) = st.releasing.get_mut(&group) {
                        *n -= 1;
                        if *n == 0 {
                            st.releasing.remove(&group);
                        }
                    }
                });
            });
        }
    }
}

impl State {
    /// The actors of a node that died: those with restarts left whose
    /// creator node lives (it places them again) are RESTARTING, the
    /// others dead; actors the dead node was restarting are dead too.
    fn restart_or_kill_actors(&mut self, node_id: &str, reason: &str) {
        let index = self.nodes.get(node_id).map(|n| n.view.node_index as u64);
        let creator_alive = |st: &State, a: &ActorEntry| {
            Some(a.creator_index()) != index
                && st
                    .nodes
                    .values()
                    .any(|n| n.view.node_index as u64 == a.creator_index() && !n.is_dead())
        };
        let mut restart = Vec::new();
        let mut doomed = Vec::new();
        for a in self.actors.values().filter(|a| a.live()) {
            let id = a.location.actor_id;
            if a.location.node_id == node_id {
                if a.may_restart() && creator_alive(self, a) {
                    restart.push(id);
                } else {
                    doomed.push((id, reason.to_owned()));
                }
            } else if a.location.state == RESTARTING && Some(a.creator_index()) == index {
                let why = format!("its creator node {node_id}, which restarts it, died: {reason}");
                doomed.push((id, why));
            }
        }
        for id in restart {
            let a = self.actors.get_mut(&id).expect("listed above");
            a.location.state = RESTARTING.into();
            a.location.death_reason = reason.to_owned();
            tracing::info!(actor = id, "actor restarting: {reason}");
            self.save_actor(id);
        }
        for (id, why) in doomed {
            self.kill_actor(id, &why);
        }
    }

    /// Marks a node dead with `reason`: its actors die (names freed), its
    /// placement groups go back to pending (or fail, when a bundle was
    /// pinned to it) after their other bundles are released — the returned
    /// calls, which the caller sends.
    pub(crate) fn kill_node(&mut self, node_id: &str, reason: &str) -> Vec<Release> {
        let Some(node) = self.nodes.get_mut(node_id) else {
            return Vec::new();
        };
        if node.is_dead() {
            return Vec::new();
        }
        node.view.state = NodeState::Dead as i32;
        node.view.death_reason = reason.to_owned();
        tracing::warn!(node_id, reason, "node marked dead");
        self.save_node(node_id);

        let actor_reason = format!("node {node_id} died: {reason}");
        self.restart_or_kill_actors(node_id, &actor_reason);

        let hit: Vec<u64> = self
            .groups
            .iter()
            .filter(|(_, g)| {
                g.state() == PlacementGroupState::PgCreated
                    && g.info.bundle_nodes.iter().any(|n| n == node_id)
            })
            .map(|(id, _)| *id)
            .collect();
        let mut releases = Vec::new();
        for id in hit {
            releases.extend(self.lose_group(id, node_id, &format!("died: {reason}")));
        }
        self.bump();
        releases
    }

    /// A created group lost its bundles on `node_id` (`what` happened to
    /// it): its other bundles are released (the returned calls), its actors
    /// die, and it goes back to pending — or fails, when a bundle was pinned
    /// to that node.
    pub(crate) fn lose_group(&mut self, id: u64, node_id: &str, what: &str) -> Vec<Release> {
        let releases: Vec<Release> = self
            .group_nodes(id)
            .into_iter()
            .filter(|(other, _)| other != node_id)
            .map(|(_, address)| (address, id))
            .collect();
        let Some(g) = self.groups.get_mut(&id) else {
            return releases;
        };
        let nodes = std::mem::take(&mut g.info.bundle_nodes);
        let bundles = g.bundles.clone();
        let actors = std::mem::take(&mut g.actors);
        let pinned_here = g.pinned.iter().any(|p| p == node_id);
        self.credit_bundles(&nodes, &bundles);
        let lost = format!("placement group {id} lost node {node_id}: {what}");
        for actor in actors {
            self.kill_actor(actor, &lost);
        }
        if pinned_here {
            let error = format!("NODE_DIED: node {node_id}, a bundle's requested node, {what}");
            self.set_group_state(id, PlacementGroupState::PgFailed, error);
        } else {
            let error = format!("rescheduling: node {node_id} {what}");
            self.set_group_state(id, PlacementGroupState::PgPending, error);
        }
        releases
    }

    /// Matches what a reconnecting node reports against the records: see
    /// the module docs. Returns the `ReleaseBundles` calls owed.
    fn reconcile_node(&mut self, req: &RegisterNodeRequest) -> Vec<Release> {
        let node_id = req.node_id.as_str();
        let held: HashSet<u64> = req.actors.iter().copied().collect();
        let missing: Vec<u64> = self
            .actors
            .values()
            .filter(|a| {
                a.live()
                    && a.location.node_id == node_id
                    && a.location.state == super::state::ALIVE
                    && !held.contains(&a.location.actor_id)
            })
            .map(|a| a.location.actor_id)
            .collect();
        for id in missing {
            let reason = format!("actor {id} was gone from node {node_id} when it reconnected");
            self.kill_actor(id, &reason);
        }

        let bundles: HashSet<(u64, u32)> = req
            .bundles
            .iter()
            .map(|b| (b.placement_group_id, b.bundle_index))
            .collect();
        let lost: Vec<u64> = self
            .groups
            .iter()
            .filter(|(id, g)| {
                g.state() == PlacementGroupState::PgCreated
                    && g.info
                        .bundle_nodes
                        .iter()
                        .enumerate()
                        .any(|(i, n)| n == node_id && !bundles.contains(&(**id, i as u32)))
            })
            .map(|(id, _)| *id)
            .collect();
        let mut releases = Vec::new();
        for id in lost {
            releases.extend(self.lose_group(id, node_id, "came back without its bundles"));
        }
        // Bundles of groups that are gone (removed, failed, or lost with the
        // previous control plane's last writes) are given back.
        let mut stale: Vec<u64> = bundles
            .iter()
            .map(|(group, _)| *group)
            .filter(|group| {
                !self.groups.get(group).is_some_and(|g| {
                    matches!(
                        g.state(),
                        PlacementGroupState::PgCreated | PlacementGroupState::PgPending
                    )
                })
            })
            .collect();
        stale.sort_unstable();
        stale.dedup();
        releases.extend(stale.into_iter().map(|g| (req.address.clone(), g)));
        releases
    }
}

/// A node's reported `available` map, valid and within its `total`: no
/// resource the node does not have, none above its total.
fn available_within(
    map: &reef_proto::ResourceMap,
    total: &Resources,
) -> Result<Resources, reef_core::ResourcesError> {
    let available = Resources::validated("available", map)?;
    available.check_within(total)?;
    Ok(available)
}
