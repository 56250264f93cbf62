//! Placement group lifecycle.
//!
//! * **Create**: bundles that cannot fit the schedulable nodes' *total*
//!   resources are rejected at once (`INFEASIBLE`, naming the bundle and
//!   strategy). Otherwise the group is recorded `PG_PENDING` and a
//!   reservation round runs before the reply: [`crate::placement`] picks
//!   nodes from the view's *available* resources, each chosen node gets one
//!   `Peer.ReserveBundles` with all its bundles, and only when every node
//!   says yes is the group `PG_CREATED`. If any node refuses, the others'
//!   bundles are released and the group stays pending; a background loop
//!   retries pending groups every ~100 ms and whenever the view changes.
//! * **Remove**: `ReleaseBundles` on every node of the group, `PG_REMOVED`.
//! * **Node death**: a created group with a bundle on the dead node releases
//!   its other bundles and goes back to pending (rescheduled whole), or
//!   fails when that bundle was pinned to the node by `node_ids`. It is
//!   not placed again until those releases are done (`State::releasing`):
//!   a release is per group and node, so a late one would undo the new
//!   reservation on a node the group went back to.
//!
//! At most one reservation round per group is in flight (`attempting`); a
//! group removed meanwhile is released by that round when it returns.
//!
//! Group records are written behind (`persist.rs`), but a reply about a
//! group (create, get, wait, remove) is sent only once the group's record,
//! as the reply shows it or newer, is stored: a group a caller was told
//! exists, is created or is removed stays so across a crash of the head.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use reef_proto::{
    BundleReservation, CreatePlacementGroupRequest, ErrorCode, PlacementGroupInfo,
    PlacementGroupState, PlacementStrategy,
};
use tokio::sync::watch;
use tonic::{Code, Status};

use super::peers::ReserveError;
use super::state::{GroupEntry, State, GROUP_TABLE};
use super::Inner;
use crate::placement::{place_bundles, Candidate, PlacementError};
use crate::status::{bad_argument, infeasible, reef_status};
use crate::tables::{id_key, Counter, Resources};

/// Group ids are reserved durably this many at a time.
const ID_BLOCK: u64 = 4096;

fn unknown_group(id: u64) -> Status {
    reef_status(
        Code::NotFound,
        ErrorCode::UnknownPlacementGroup,
        format!("placement group {id} does not exist"),
    )
}

/// One node's part of a reservation round.
struct NodePart {
    address: String,
    bundles: Vec<BundleReservation>,
}

impl Inner {
    pub(crate) async fn create_group(
        self: &Arc<Self>,
        req: CreatePlacementGroupRequest,
    ) -> Result<PlacementGroupInfo, Status> {
        let strategy = PlacementStrategy::try_from(req.strategy)
            .map_err(|_| bad_argument(format!("unknown placement strategy {}", req.strategy)))?;
        if req.bundles.is_empty() {
            return Err(bad_argument("a placement group needs at least one bundle"));
        }
        let bundles = req
            .bundles
            .iter()
            .enumerate()
            .map(|(i, b)| Resources::validated(&format!("bundle {i}"), b))
            .collect::<Result<Vec<_>, _>>()
            .map_err(bad_argument)?;
        let id = self.next_group_id()?;
        self.with_state(|st| {
            let nodes = st.schedulable_nodes();
            let candidates: Vec<Candidate<'_>> = nodes
                .iter()
                .map(|n| Candidate {
                    node_id: &n.view.node_id,
                    capacity: &n.total,
                })
                .collect();
            place_bundles(strategy, &bundles, &req.node_ids, &candidates).map_err(|e| match e {
                PlacementError::UnknownNode(node) => reef_status(
                    Code::InvalidArgument,
                    ErrorCode::UnknownNode,
                    format!("{node}: node_ids names a node that is not in the cluster (unknown, dead or draining)"),
                ),
                PlacementError::Infeasible(m) => infeasible(format!(
                    "placement group `{}` ({}) can never fit this cluster: {m}",
                    req.name,
                    strategy_name(strategy)
                )),
                PlacementError::BadRequest(m) => bad_argument(m),
            })?;
            let (state_tx, _) = watch::channel(PlacementGroupState::PgPending as i32);
            st.groups.insert(
                id,
                GroupEntry {
                    info: PlacementGroupInfo {
                        id,
                        name: req.name.clone(),
                        strategy: strategy as i32,
                        state: PlacementGroupState::PgPending as i32,
                        bundles: req.bundles.clone(),
                        bundle_nodes: Vec::new(),
                        error: String::new(),
                        node_ids: req.node_ids.clone(),
                        tenant: req.tenant.clone(),
                    },
                    bundles,
                    pinned: req.node_ids.clone(),
                    // Claimed for the first round below, so the retry loop
                    // does not race it.
                    attempting: true,
                    actors: Vec::new(),
                    state_tx,
                },
            );
            st.save_group(id);
            st.bump();
            Ok::<_, Status>(())
        })?;
        self.try_reserve(id, true).await;
        self.reported_group(id).await
    }

    fn next_group_id(&self) -> Result<u64, Status> {
        let mut ids = self.group_ids.lock().unwrap_or_else(|e| e.into_inner());
        if ids.0 > ids.1 {
            let last = self.counters.advance(Counter::PlacementGroup, ID_BLOCK)?;
            *ids = (last - ID_BLOCK + 1, last);
        }
        let id = ids.0;
        ids.0 += 1;
        Ok(id)
    }

    fn group_info(&self, id: u64) -> Result<PlacementGroupInfo, Status> {
        self.with_state(|st| st.groups.get(&id).map(|g| g.info.clone()))
            .ok_or_else(|| unknown_group(id))
    }

    /// The group as it is now, once its record is stored (see the module
    /// docs).
    pub(crate) async fn reported_group(&self, id: u64) -> Result<PlacementGroupInfo, Status> {
        let info = self.group_info(id)?;
        self.store_group(id).await?;
        Ok(info)
    }

    /// Returns once group `id`'s last queued record is stored.
    async fn store_group(&self, id: u64) -> Result<(), Status> {
        let key = id_key(id);
        if self.persist.is_stored(GROUP_TABLE, &key) {
            return Ok(());
        }
        // Shares the batch (one storage transaction) with whatever else is
        // queued.
        let persist = self.persist.clone();
        tokio::task::spawn_blocking(move || persist.flush_record(GROUP_TABLE, &key))
            .await
            .map_err(crate::status::internal)
    }

    /// One reservation round for a pending group. `claimed`: the caller
    /// already set `attempting`.
    pub(crate) async fn try_reserve(self: &Arc<Self>, id: u64, claimed: bool) {
        let Some((assignment, parts)) = self.with_state(|st| plan_round(st, id, claimed)) else {
            return;
        };
        let results = join_all(
            parts
                .iter()
                .map(|(_, part)| self.peers.reserve(&part.address, part.bundles.clone())),
        )
        .await;
        let mut failure = None;
        let mut maybe_reserved = Vec::new();
        for ((node, part), result) in parts.iter().zip(results) {
            match result {
                Ok(()) => maybe_reserved.push(part.address.clone()),
                Err(e) => {
                    if matches!(e, ReserveError::Transport(_)) {
                        maybe_reserved.push(part.address.clone());
                    }
                    failure.get_or_insert_with(|| format!("node {node} {e}"));
                }
            }
        }
        let release = self.with_state(|st| finish_round(st, id, assignment, failure));
        if release {
            join_all(maybe_reserved.iter().map(|a| self.peers.release(a, id))).await;
        }
    }

    pub(crate) async fn remove_group(self: &Arc<Self>, id: u64) -> Result<(), Status> {
        let release = self.with_state(|st| {
            let g = st.groups.get_mut(&id).ok_or_else(|| unknown_group(id))?;
            let release = match g.state() {
                PlacementGroupState::PgRemoved => return Ok(Vec::new()),
                PlacementGroupState::PgCreated => {
                    let nodes = g.info.bundle_nodes.clone();
                    let bundles = g.bundles.clone();
                    let actors = std::mem::take(&mut g.actors);
                    let release = st.group_nodes(id);
                    st.credit_bundles(&nodes, &bundles);
                    for actor in actors {
                        st.kill_actor(actor, &format!("placement group {id} was removed"));
                    }
                    release
                }
                // Nothing reserved (an in-flight round releases on return).
                _ => Vec::new(),
            };
            st.set_group_state(id, PlacementGroupState::PgRemoved, String::new());
            Ok::<_, Status>(release)
        })?;
        let results = join_all(release.iter().map(|(_, a)| self.peers.release(a, id))).await;
        for ((node, _), r) in release.iter().zip(results) {
            if let Err(e) = r {
                tracing::warn!(group = id, node, error = %e, "releasing bundles failed");
            }
        }
        self.store_group(id).await
    }

    /// Waits until the group is no longer pending, at most `timeout`, and
    /// returns it as it is then (still `PG_PENDING` on timeout).
    pub(crate) async fn wait_group(
        &self,
        id: u64,
        timeout: Duration,
    ) -> Result<PlacementGroupInfo, Status> {
        let mut rx = self
            .with_state(|st| st.groups.get(&id).map(|g| g.state_tx.subscribe()))
            .ok_or_else(|| unknown_group(id))?;
        let wait = async {
            loop {
                if *rx.borrow_and_update() != PlacementGroupState::PgPending as i32 {
                    return;
                }
                if rx.changed().await.is_err() {
                    return;
                }
            }
        };
        let _ = tokio::time::timeout(timeout, wait).await;
        self.reported_group(id).await
    }

    /// Pending groups not being attempted, oldest first.
    pub(crate) fn retryable_groups(&self) -> Vec<u64> {
        self.with_state(|st| {
            st.groups
                .iter()
                .filter(|(id, g)| {
                    g.state() == PlacementGroupState::PgPending
                        && !g.attempting
                        && !st.releasing.contains_key(id)
                })
                .map(|(id, _)| *id)
                .collect()
        })
    }
}

fn strategy_name(s: PlacementStrategy) -> &'static str {
    match s {
        PlacementStrategy::Unspecified => "PACK",
        s => s.as_str_name(),
    }
}

type Round = (Vec<String>, Vec<(String, NodePart)>);

/// Chooses nodes for a pending group from the view's availability and
/// takes the bundles from it; `None` when there is nothing to send (not
/// pending, already in flight, or nothing fits now).
fn plan_round(st: &mut State, id: u64, claimed: bool) -> Option<Round> {
    let g = st.groups.get(&id)?;
    if g.state() != PlacementGroupState::PgPending
        || (g.attempting && !claimed)
        // (A claimed round is a new group's first: nothing to release yet.)
        || (!claimed && st.releasing.contains_key(&id))
    {
        return None;
    }
    let strategy = PlacementStrategy::try_from(g.info.strategy).unwrap_or(PlacementStrategy::Pack);
    let nodes = st.schedulable_nodes();
    let available: Vec<Resources> = nodes.iter().map(|n| n.available()).collect();
    let candidates: Vec<Candidate<'_>> = nodes
        .iter()
        .zip(&available)
        .map(|(n, a)| Candidate {
            node_id: &n.view.node_id,
            capacity: a,
        })
        .collect();
    let placed = place_bundles(strategy, &g.bundles, &g.pinned, &candidates);
    let addresses: BTreeMap<String, String> = nodes
        .iter()
        .map(|n| (n.view.node_id.clone(), n.view.address.clone()))
        .collect();
    let assignment = match placed {
        Ok(a) => a,
        Err(PlacementError::Infeasible(m)) => {
            let g = st.groups.get_mut(&id).expect("checked");
            g.attempting = false;
            g.info.error = format!("waiting for resources: {m}");
            return None;
        }
        Err(e) => {
            let code = match e {
                PlacementError::UnknownNode(_) => "UNKNOWN_NODE",
                _ => "BAD_ARGUMENT",
            };
            st.groups.get_mut(&id).expect("checked").attempting = false;
            st.set_group_state(id, PlacementGroupState::PgFailed, format!("{code}: {e}"));
            return None;
        }
    };
    let g = st.groups.get_mut(&id).expect("checked");
    g.attempting = true;
    let bundles = g.bundles.clone();
    let mut parts: BTreeMap<String, NodePart> = BTreeMap::new();
    for (i, (node, bundle)) in assignment.iter().zip(&bundles).enumerate() {
        parts
            .entry(node.clone())
            .or_insert_with(|| NodePart {
                address: addresses[node].clone(),
                bundles: Vec::new(),
            })
            .bundles
            .push(BundleReservation {
                placement_group_id: id,
                bundle_index: i as u32,
                resources: Some(bundle.to_map()),
            });
    }
    st.debit_bundles(&assignment, &bundles);
    st.bump();
    Some((assignment, parts.into_iter().collect()))
}

/// Records a round's outcome; returns whether what may have been reserved
/// must be released (the round failed, a node died, or the group was
/// removed meanwhile).
fn finish_round(st: &mut State, id: u64, assignment: Vec<String>, failure: Option<String>) -> bool {
    let nodes_alive = assignment
        .iter()
        .all(|n| st.nodes.get(n).is_some_and(|n| !n.is_dead()));
    let Some(g) = st.groups.get_mut(&id) else {
        return true;
    };
    g.attempting = false;
    let bundles = g.bundles.clone();
    let pending = g.state() == PlacementGroupState::PgPending;
    if failure.is_none() && nodes_alive && pending {
        g.info.bundle_nodes = assignment;
        st.set_group_state(id, PlacementGroupState::PgCreated, String::new());
        return false;
    }
    st.credit_bundles(&assignment, &bundles);
    if let Some(g) = st.groups.get_mut(&id).filter(|_| pending) {
        g.info.error =
            failure.unwrap_or_else(|| "a chosen node died during the reservation".into());
    }
    st.bump();
    true
}
