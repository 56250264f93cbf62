//! The actor directory: placement (which node), names, states, lookups.
//!
//! Placement by strategy:
//! * **default**: the requester node when it is schedulable and its view
//!   availability fits; else the schedulable node with the most free CPU
//!   that fits; else — the actor fits some node's *total* but nothing is
//!   free now — that node anyway (the requester first, then the one with the
//!   most free CPU): the node queues the actor until resources free up.
//! * **spread**: round robin over the nodes that fit now (else over those
//!   whose total fits).
//! * **node affinity**: hard → that node (queued there if busy), an error if
//!   it is unknown, dead, or too small; soft → that node if alive with room
//!   now, else the default strategy.
//! * **placement group bundle**: the node of that bundle (`-1`: round robin
//!   over the group's bundles the actor fits in); the group must be created.
//!   Use of a bundle's capacity is enforced by the node, not here.
//!
//! Nothing fits any node's total → `INFEASIBLE`. A placed actor's resources
//! are taken from its node's view availability until the next heartbeat.

use reef_proto::scheduling_strategy::Kind;
use reef_proto::{
    lookup_actor_request, ActorLocation, BundleRef, ErrorCode, PlaceActorRequest,
    PlacementGroupState, SchedulingStrategy, SetActorStateRequest,
};
use tonic::{Code, Status};

use super::state::{ActorEntry, NodeEntry, State, ALIVE, DEAD, PENDING, RESTARTING};
use crate::status::{bad_argument, infeasible, reef_status, unknown_node};
use crate::tables::Resources;

fn unknown_actor(what: impl std::fmt::Display) -> Status {
    reef_status(Code::NotFound, ErrorCode::UnknownActor, what)
}

fn unknown_group(id: u64, why: &str) -> Status {
    reef_status(
        Code::NotFound,
        ErrorCode::UnknownPlacementGroup,
        format!("placement group {id} {why}"),
    )
}

impl State {
    pub(crate) fn place_actor(&mut self, req: &PlaceActorRequest) -> Result<ActorLocation, Status> {
        if req.actor_id == 0 {
            return Err(bad_argument("actor_id must be non-zero"));
        }
        let resources = Resources::validated(
            &format!("actor {}", req.actor_id),
            &req.resources.clone().unwrap_or_default(),
        )
        .map_err(bad_argument)?;
        if let Some(existing) = self.actors.get(&req.actor_id) {
            if req.restart {
                return self.replace_actor(req, &resources);
            }
            if existing.live() {
                // A retried request: same answer.
                return Ok(existing.location.clone());
            }
        } else if req.restart {
            return Err(unknown_actor(format!(
                "actor {} is not in the directory (nothing to restart)",
                req.actor_id
            )));
        }
        if !req.name.is_empty() {
            if let Some(&holder) = self.names.get(&req.name) {
                if holder != req.actor_id && self.actors.get(&holder).is_some_and(|a| a.live()) {
                    return Err(reef_status(
                        Code::AlreadyExists,
                        ErrorCode::NameTaken,
                        format!("actor name `{}` is taken by live actor {holder}", req.name),
                    ));
                }
            }
        }
        let (node_id, group) = self.choose_node(
            req.actor_id,
            &resources,
            req.strategy.as_ref(),
            &req.requester_node_id,
        )?;
        let node = self.nodes.get_mut(&node_id).expect("chosen from the nodes");
        if group.is_none() {
            node.debit.add(&resources);
        }
        let location = ActorLocation {
            actor_id: req.actor_id,
            node_id,
            address: node.view.address.clone(),
            state: PENDING.into(),
            death_reason: String::new(),
            num_restarts: 0,
            lifecycle: Some(req.lifecycle.unwrap_or_default()),
            tenant: req.tenant.clone(),
        };
        if let Some(g) = group.and_then(|g| self.groups.get_mut(&g)) {
            g.actors.push(req.actor_id);
        }
        if !req.name.is_empty() {
            self.names.insert(req.name.clone(), req.actor_id);
        }
        self.actors.insert(
            req.actor_id,
            ActorEntry {
                location: location.clone(),
                name: req.name.clone(),
                module: req.module.clone(),
                class: req.class.clone(),
                job_id: req.job_id,
                group,
            },
        );
        self.save_actor(req.actor_id);
        self.bump();
        Ok(location)
    }

    /// Places again an actor whose node died (state RESTARTING), by its
    /// strategy, keeping its name; a dead actor stays dead, a live one
    /// keeps its place (a repeated request).
    fn replace_actor(
        &mut self,
        req: &PlaceActorRequest,
        resources: &Resources,
    ) -> Result<ActorLocation, Status> {
        let actor = &self.actors[&req.actor_id];
        match actor.location.state.as_str() {
            RESTARTING => {}
            DEAD => {
                return Err(reef_status(
                    Code::FailedPrecondition,
                    ErrorCode::ActorDead,
                    format!(
                        "actor {} is dead: {}",
                        req.actor_id, actor.location.death_reason
                    ),
                ))
            }
            _ => return Ok(actor.location.clone()),
        }
        let (node_id, group) = self.choose_node(
            req.actor_id,
            resources,
            req.strategy.as_ref(),
            &req.requester_node_id,
        )?;
        let node = self.nodes.get_mut(&node_id).expect("chosen from the nodes");
        if group.is_none() {
            node.debit.add(resources);
        }
        let address = node.view.address.clone();
        if let Some(g) = group.and_then(|g| self.groups.get_mut(&g)) {
            if !g.actors.contains(&req.actor_id) {
                g.actors.push(req.actor_id);
            }
        }
        let actor = self.actors.get_mut(&req.actor_id).expect("checked above");
        actor.location.node_id = node_id;
        actor.location.address = address;
        actor.location.state = PENDING.into();
        actor.location.num_restarts += 1;
        let location = actor.location.clone();
        tracing::info!(
            actor = req.actor_id,
            node = %location.node_id,
            restart = location.num_restarts,
            "actor placed again"
        );
        self.save_actor(req.actor_id);
        self.bump();
        Ok(location)
    }

    /// The node for an actor, and the placement group when it goes into a
    /// bundle.
    fn choose_node(
        &mut self,
        actor_id: u64,
        need: &Resources,
        strategy: Option<&SchedulingStrategy>,
        requester: &str,
    ) -> Result<(String, Option<u64>), Status> {
        match strategy.and_then(|s| s.kind.as_ref()) {
            None | Some(Kind::Default(_)) => self.default_node(actor_id, need, requester),
            Some(Kind::Spread(_)) => self.spread_node(actor_id, need),
            Some(Kind::NodeAffinity(a)) => {
                let target = self.nodes.get(&a.node_id);
                let takes_it = target.is_some_and(|n| {
                    n.schedulable()
                        && need.fits_in(&n.total)
                        && (!a.soft || need.fits_in(&n.available()))
                });
                if takes_it {
                    return Ok((a.node_id.clone(), None));
                }
                if a.soft {
                    return self.default_node(actor_id, need, requester);
                }
                match target {
                    None => Err(unknown_node(&a.node_id)),
                    Some(n) if !n.schedulable() => Err(reef_status(
                        Code::FailedPrecondition,
                        ErrorCode::NodeDied,
                        format!(
                            "actor {actor_id} must run on node {} (hard affinity), which is {}",
                            a.node_id,
                            if n.is_dead() { "dead" } else { "draining" }
                        ),
                    )),
                    Some(n) => Err(infeasible(format!(
                        "actor {actor_id} needs {} but its node {} (hard affinity) has {} in total",
                        need, a.node_id, &n.total
                    ))),
                }
            }
            Some(Kind::PlacementGroup(bundle)) => self.bundle_node(actor_id, need, bundle),
        }
    }

    fn default_node(
        &self,
        actor_id: u64,
        need: &Resources,
        requester: &str,
    ) -> Result<(String, Option<u64>), Status> {
        let nodes = self.schedulable_nodes();
        if let Some(r) = nodes.iter().find(|n| n.view.node_id == requester) {
            if need.fits_in(&r.available()) {
                return Ok((requester.to_owned(), None));
            }
        }
        if let Some(n) = roomiest(
            nodes
                .iter()
                .copied()
                .filter(|n| need.fits_in(&n.available())),
        ) {
            return Ok((n.view.node_id.clone(), None));
        }
        // Nothing free now: queue on a node that can ever hold it.
        if let Some(r) = nodes.iter().find(|n| n.view.node_id == requester) {
            if need.fits_in(&r.total) {
                return Ok((requester.to_owned(), None));
            }
        }
        match roomiest(nodes.iter().copied().filter(|n| need.fits_in(&n.total))) {
            Some(n) => Ok((n.view.node_id.clone(), None)),
            None => Err(self.never_fits(actor_id, need, nodes.len())),
        }
    }

    fn spread_node(
        &mut self,
        actor_id: u64,
        need: &Resources,
    ) -> Result<(String, Option<u64>), Status> {
        let nodes = self.schedulable_nodes();
        let mut fitting: Vec<&NodeEntry> = nodes
            .iter()
            .copied()
            .filter(|n| need.fits_in(&n.available()))
            .collect();
        if fitting.is_empty() {
            fitting = nodes
                .iter()
                .copied()
                .filter(|n| need.fits_in(&n.total))
                .collect();
        }
        if fitting.is_empty() {
            return Err(self.never_fits(actor_id, need, nodes.len()));
        }
        let chosen = fitting[self.spread_cursor % fitting.len()]
            .view
            .node_id
            .clone();
        self.spread_cursor = self.spread_cursor.wrapping_add(1);
        Ok((chosen, None))
    }

    fn bundle_node(
        &mut self,
        actor_id: u64,
        need: &Resources,
        bundle: &BundleRef,
    ) -> Result<(String, Option<u64>), Status> {
        let id = bundle.placement_group_id;
        let g = self
            .groups
            .get(&id)
            .ok_or_else(|| unknown_group(id, "does not exist"))?;
        match g.state() {
            PlacementGroupState::PgCreated => {}
            PlacementGroupState::PgRemoved => return Err(unknown_group(id, "was removed")),
            PlacementGroupState::PgPending => {
                return Err(reef_status(
                    Code::Unavailable,
                    ErrorCode::UnknownPlacementGroup,
                    format!("placement group {id} is not created yet (pending); wait for it first"),
                ))
            }
            _ => {
                return Err(reef_status(
                    Code::FailedPrecondition,
                    ErrorCode::UnknownPlacementGroup,
                    format!("placement group {id} failed: {}", g.info.error),
                ))
            }
        }
        let index = if bundle.bundle_index < 0 {
            let fitting: Vec<usize> = (0..g.bundles.len())
                .filter(|&i| need.fits_in(&g.bundles[i]))
                .collect();
            if fitting.is_empty() {
                return Err(infeasible(format!(
                    "actor {actor_id} needs {}, more than any bundle of placement group {id}",
                    need
                )));
            }
            let i = fitting[self.spread_cursor % fitting.len()];
            self.spread_cursor = self.spread_cursor.wrapping_add(1);
            i
        } else {
            let i = bundle.bundle_index as usize;
            let Some(b) = g.bundles.get(i) else {
                return Err(bad_argument(format!(
                    "placement group {id} has {} bundles, no bundle {i}",
                    g.bundles.len()
                )));
            };
            if !need.fits_in(b) {
                return Err(infeasible(format!(
                    "actor {actor_id} needs {} but bundle {i} of placement group {id} has {}",
                    need, b
                )));
            }
            i
        };
        Ok((g.info.bundle_nodes[index].clone(), Some(id)))
    }

    fn never_fits(&self, actor_id: u64, need: &Resources, alive: usize) -> Status {
        infeasible(format!(
            "actor {actor_id} needs {}, which no alive node has in total ({alive} alive nodes)",
            need
        ))
    }

    pub(crate) fn set_actor_state(&mut self, req: &SetActorStateRequest) -> Result<(), Status> {
        let actor = self.actors.get_mut(&req.actor_id).ok_or_else(|| {
            unknown_actor(format!("actor {} is not in the directory", req.actor_id))
        })?;
        match req.state.as_str() {
            DEAD => {
                let reason = if req.reason.is_empty() {
                    "marked dead"
                } else {
                    &req.reason
                };
                self.kill_actor(req.actor_id, reason);
                Ok(())
            }
            RESTARTING => {
                if !actor.live() {
                    return Err(reef_status(
                        Code::FailedPrecondition,
                        ErrorCode::ActorDead,
                        format!(
                            "actor {} is dead ({})",
                            req.actor_id, actor.location.death_reason
                        ),
                    ));
                }
                // Restarted in place by its node (its instance trapped).
                actor.location.state = RESTARTING.into();
                actor.location.death_reason = req.reason.clone();
                actor.location.num_restarts += 1;
                self.save_actor(req.actor_id);
                Ok(())
            }
            ALIVE | PENDING => {
                if !actor.live() {
                    return Err(reef_status(
                        Code::FailedPrecondition,
                        ErrorCode::ActorDead,
                        format!(
                            "actor {} is dead ({}); place it again to restart it",
                            req.actor_id, actor.location.death_reason
                        ),
                    ));
                }
                actor.location.state = req.state.clone();
                self.save_actor(req.actor_id);
                Ok(())
            }
            other => Err(bad_argument(format!(
                "actor state `{other}`: expected ALIVE, RESTARTING, DEAD or PENDING"
            ))),
        }
    }

    /// By name: the live actor holding it. By id: the actor in any state
    /// (dead ones carry their reason) while it is retained in memory.
    pub(crate) fn lookup_actor(
        &self,
        key: Option<&lookup_actor_request::Key>,
    ) -> Result<ActorLocation, Status> {
        match key {
            Some(lookup_actor_request::Key::Name(name)) => self
                .names
                .get(name)
                .and_then(|id| self.actors.get(id))
                .filter(|a| a.live())
                .map(|a| a.location.clone())
                .ok_or_else(|| unknown_actor(format!("no live actor is named `{name}`"))),
            Some(lookup_actor_request::Key::ActorId(id)) => self
                .actors
                .get(id)
                .map(|a| a.location.clone())
                .ok_or_else(|| unknown_actor(format!("actor {id} is not in the directory"))),
            None => Err(bad_argument("lookup needs a name or an actor id")),
        }
    }
}

/// The node with the most free CPU (the first on ties).
fn roomiest<'a>(nodes: impl Iterator<Item = &'a NodeEntry>) -> Option<&'a NodeEntry> {
    nodes.fold(None, |best: Option<&NodeEntry>, n| match best {
        Some(b) if b.available().cpus >= n.available().cpus => Some(b),
        _ => Some(n),
    })
}
