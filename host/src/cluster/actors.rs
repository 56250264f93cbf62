//! Actors across nodes.
//!
//! * **Creation.** The node a driver (or guest) asks allocates the actor id,
//!   and the control plane places the actor (`PlaceActor`: resources,
//!   strategy, bundle) and claims its name cluster-wide. Placed here, it is
//!   created here; placed elsewhere, the creation is forwarded to that node
//!   (`Peer.Forward`). A driver's create returns once the actor is placed;
//!   a guest gets the id at once and its first calls wait for the placement.
//! * **Calls** go from the caller's node straight to the actor's node over
//!   the same batched peer link, never through the head; results come back
//!   like forwarded tasks' (`ObjectsReady` to the result's owner). A node
//!   learns where an actor lives when it places it, or asks the control
//!   plane once (`LookupActor`) and remembers.
//! * **Order.** Calls from one caller reach the actor in the order they were
//!   made: they queue while the actor's node is looked up, and a call that
//!   overtakes the creation on the actor's node waits there for it (parked).
//! * **Lifetimes.** Anonymous actors die with the driver that created them:
//!   when it disconnects (its node sends `KillActor`) or when its node dies
//!   (the actor's node sees the death in the view). An actor whose node dies
//!   is dead; its pending calls fail with NODE_DIED.

use std::sync::Arc;

use reef_proto as pb;
use tokio::sync::oneshot;

use super::placement::Strategy;
use super::remote::{args_to_proto, options_to_proto, Forwarded};
use super::{rpc_error, to_map};
use crate::actors::{check_class, creator_index, ActorSpec, Call};
use crate::error::{ErrorCode, ReefError, ReefResult};
use crate::node::Node;

/// What this node knows about an actor that does not live here.
pub enum Route {
    /// Being placed or looked up: calls wait here, in order.
    Resolving {
        calls: Vec<Call>,
        kill: bool,
    },
    There(RemoteActor),
    Gone(ReefError),
}

pub struct RemoteActor {
    pub node_id: String,
    /// The driver session on this node that created it (anonymous actors
    /// die with it).
    pub owner: Option<u64>,
    pub named: bool,
    /// Constructor arguments, held here until the actor dies.
    pub args: Vec<crate::tasks::ArgSpec>,
}

/// Resolves when a driver-created actor is placed (or failed to be).
pub type Placed = oneshot::Receiver<ReefResult<()>>;

/// Waits for a creation's placement; the actor's id once it is placed.
pub async fn when_placed(created: ReefResult<(u64, Placed)>) -> ReefResult<u64> {
    let (id, placed) = created?;
    match placed.await {
        Ok(result) => result.map(|()| id),
        Err(_) => Err(ReefError::internal("the actor's placement was lost")),
    }
}

impl Node {
    /// Creates an actor somewhere in the cluster; returns its id at once and
    /// a receiver for the placement's outcome.
    pub fn create_actor(self: &Arc<Self>, spec: ActorSpec) -> ReefResult<(u64, Placed)> {
        match check_class(self, &spec.module, &spec.class) {
            // Registered through another node: fetched by hash below.
            Err(e) if e.code == ErrorCode::UnknownModule && self.cluster.is_clustered() => {}
            other => {
                other?;
            }
        }
        let id = self.actors.new_id(self.cluster.index());
        let (tx, rx) = oneshot::channel();
        if !self.cluster.is_clustered() {
            self.actors.create(self, id, spec)?;
            let _ = tx.send(Ok(()));
            return Ok((id, rx));
        }
        self.cluster.actor_routes.lock().unwrap().insert(
            id,
            Route::Resolving {
                calls: Vec::new(),
                kill: false,
            },
        );
        let node = self.clone();
        tokio::spawn(async move {
            let route = node.place_actor(id, spec).await;
            let outcome = match &route {
                Ok(_) => Ok(()),
                Err(e) => Err(e.clone()),
            };
            node.settle_route(id, route);
            let _ = tx.send(outcome);
        });
        Ok((id, rx))
    }

    /// Asks the control plane where the actor goes and starts it there.
    /// `Ok(None)`: it lives here.
    async fn place_actor(
        self: &Arc<Self>,
        id: u64,
        spec: ActorSpec,
    ) -> ReefResult<Option<RemoteActor>> {
        if self.registry.get(&spec.module).is_err() {
            self.fetch_module(&spec.module).await?;
            check_class(self, &spec.module, &spec.class)?;
        }
        let resources = spec.options.resources.clone().unwrap_or_default();
        let request = pb::PlaceActorRequest {
            actor_id: id,
            module: spec.module.clone(),
            class: spec.class.clone(),
            name: spec.name.clone().unwrap_or_default(),
            resources: Some(to_map(&resources)),
            strategy: Some(spec.strategy.to_proto()),
            requester_node_id: self.id.clone(),
            job_id: 0,
        };
        let location = self
            .cluster
            .gcs()?
            .place_actor(request)
            .await
            .map_err(|s| rpc_error(&format!("placing actor `{}`", spec.class), s))?;
        if location.node_id == self.id {
            self.actors.create(self, id, spec)?;
            return Ok(None);
        }
        let started = self.hold_args(&spec.args).and_then(|()| {
            let link = self.peer(&location.node_id)?;
            link.forward(pb::ForwardedWork {
                work: Some(pb::forwarded_work::Work::CreateActor(pb::CreateActor {
                    req_id: id,
                    module: spec.module.clone(),
                    class: spec.class.clone(),
                    args: args_to_proto(&spec.args),
                    name: spec.name.clone().unwrap_or_default(),
                    options: Some(options_to_proto(&spec.options)),
                    strategy: Some(spec.strategy.to_proto()),
                })),
                strategy: Some(spec.strategy.to_proto()),
                hops: 1,
            });
            Ok(())
        });
        if let Err(e) = started {
            self.report_actor_state(id, Some(&e));
            return Err(e);
        }
        Ok(Some(RemoteActor {
            node_id: location.node_id,
            owner: spec.owner,
            named: spec.name.is_some_and(|n| !n.is_empty()),
            args: spec.args,
        }))
    }

    /// Records where an actor is (or why it is not) and lets the calls that
    /// waited for that go, in order.
    fn settle_route(self: &Arc<Self>, id: u64, route: ReefResult<Option<RemoteActor>>) {
        let new = match route {
            Ok(None) => None,
            Ok(Some(remote)) => Some(Route::There(remote)),
            Err(e) => Some(Route::Gone(e)),
        };
        let old = {
            let mut routes = self.cluster.actor_routes.lock().unwrap();
            match new {
                Some(route) => routes.insert(id, route),
                None => routes.remove(&id),
            }
        };
        if let Some(Route::Resolving { calls, kill }) = old {
            for call in calls {
                self.dispatch_call(id, call);
            }
            if kill {
                let node = self.clone();
                tokio::spawn(async move {
                    if let Err(e) = node.kill_actor(id).await {
                        tracing::warn!("killing actor {id}: {e}");
                    }
                });
            }
        }
    }

    /// Calls a method of an actor anywhere in the cluster. The result
    /// object `return_id` is created here at once; a call that cannot run
    /// seals it with the error. Fails only when the id is already in use.
    pub fn call_actor(
        self: &Arc<Self>,
        actor: u64,
        return_id: u64,
        method: String,
        args: Vec<crate::tasks::ArgSpec>,
    ) -> ReefResult<()> {
        self.store.create_pending(return_id, 1)?;
        if let Err(e) = self.hold_args(&args) {
            self.store.resolve(return_id, Err(e));
            self.report_if_foreign(return_id);
            return Ok(());
        }
        let call = Call {
            return_id,
            method,
            args,
        };
        self.dispatch_call(actor, call);
        Ok(())
    }

    fn dispatch_call(self: &Arc<Self>, actor: u64, call: Call) {
        if self.actors.is_here(actor) {
            return self.actors.enqueue(self, actor, call);
        }
        let mut routes = self.cluster.actor_routes.lock().unwrap();
        match routes.get_mut(&actor) {
            Some(Route::Resolving { calls, .. }) => calls.push(call),
            Some(Route::There(remote)) => {
                let node_id = remote.node_id.clone();
                drop(routes);
                self.forward_call(actor, call, node_id);
            }
            Some(Route::Gone(e)) => {
                let e = e.clone();
                drop(routes);
                self.fail_call(call, e);
            }
            None if self.cluster.is_clustered() && creator_index(actor) != self.cluster.index() => {
                routes.insert(
                    actor,
                    Route::Resolving {
                        calls: vec![call],
                        kill: false,
                    },
                );
                drop(routes);
                let node = self.clone();
                tokio::spawn(async move {
                    let route = node.look_up_actor(actor).await;
                    node.settle_route(actor, route);
                });
            }
            None => {
                drop(routes);
                self.actors.enqueue(self, actor, call);
            }
        }
    }

    /// Where the control plane says an actor created elsewhere lives.
    async fn look_up_actor(&self, actor: u64) -> ReefResult<Option<RemoteActor>> {
        let key = pb::lookup_actor_request::Key::ActorId(actor);
        let location = self.ask_directory(key, format!("actor {actor}")).await?;
        self.route_from(location)
    }

    /// The control plane's actor directory entry for an id or a name.
    async fn ask_directory(
        &self,
        key: pb::lookup_actor_request::Key,
        what: String,
    ) -> ReefResult<pb::ActorLocation> {
        self.cluster
            .gcs()?
            .lookup_actor(key)
            .await
            .map_err(|s| rpc_error(&format!("looking up {what}"), s))
    }

    fn route_from(&self, location: pb::ActorLocation) -> ReefResult<Option<RemoteActor>> {
        if location.state == "DEAD" {
            return Err(ReefError::new(
                ErrorCode::ActorDead,
                format!(
                    "actor {} is dead: {}",
                    location.actor_id, location.death_reason
                ),
            ));
        }
        if location.node_id == self.id {
            return Ok(None);
        }
        Ok(Some(RemoteActor {
            node_id: location.node_id,
            owner: None,
            named: true,
            args: Vec::new(),
        }))
    }

    fn forward_call(self: &Arc<Self>, actor: u64, call: Call, node_id: String) {
        let link = match self.peer(&node_id) {
            Ok(link) => link,
            Err(e) => return self.fail_call(call, e),
        };
        let Call {
            return_id,
            method,
            args,
        } = call;
        let work = pb::ForwardedWork {
            work: Some(pb::forwarded_work::Work::CallActor(pb::CallActor {
                actor_id: actor,
                return_id,
                method: method.clone(),
                args: args_to_proto(&args),
            })),
            strategy: None,
            hops: 1,
        };
        self.cluster.forwarded.lock().unwrap().insert(
            return_id,
            Forwarded {
                node_id,
                what: format!("a call of method `{method}` of actor {actor}"),
                args,
            },
        );
        link.forward(work);
    }

    /// Seals a call's result with an error and lets its arguments go.
    pub fn fail_call(self: &Arc<Self>, call: Call, e: ReefError) {
        self.store.resolve(call.return_id, Err(e));
        self.report_if_foreign(call.return_id);
        self.release_args(&call.args);
    }

    /// Kills an actor wherever it lives.
    pub async fn kill_actor(self: &Arc<Self>, actor: u64) -> ReefResult<()> {
        if self.actors.is_here(actor) {
            return self.kill_local_actor(actor).await;
        }
        let remote = {
            let mut routes = self.cluster.actor_routes.lock().unwrap();
            match routes.get_mut(&actor) {
                Some(Route::Resolving { kill, .. }) => {
                    *kill = true;
                    return Ok(());
                }
                Some(Route::Gone(_)) => return Ok(()),
                Some(Route::There(_)) => match routes.insert(actor, killed_route()) {
                    Some(Route::There(remote)) => Some(remote),
                    _ => unreachable!("matched above"),
                },
                None => None,
            }
        };
        let remote = match remote {
            Some(remote) => remote,
            None if self.cluster.is_clustered() && creator_index(actor) != self.cluster.index() => {
                match self.look_up_actor(actor).await? {
                    Some(remote) => remote,
                    None => return self.kill_local_actor(actor).await,
                }
            }
            None => return self.kill_local_actor(actor).await,
        };
        self.release_args(&remote.args);
        let link = self.peer(&remote.node_id)?;
        link.client
            .clone()
            .kill_actor(pb::KillActorRequest { actor_id: actor })
            .await
            .map_err(|s| rpc_error(&format!("killing actor {actor}"), s))?;
        Ok(())
    }

    /// Kills an actor of this node; returns once the control plane knows
    /// (so its name is free and lookups fail from then on).
    pub async fn kill_local_actor(&self, actor: u64) -> ReefResult<()> {
        self.actors.kill(actor)?;
        let Ok(gcs) = self.cluster.gcs() else {
            return Ok(());
        };
        let killed = gcs.set_actor_state(actor, "DEAD", "the actor was killed");
        if let Err(status) = killed.await {
            tracing::debug!("reporting actor {actor} killed: {status}");
        }
        Ok(())
    }

    /// Finds a named actor anywhere in the cluster.
    pub async fn lookup_actor(&self, name: &str) -> ReefResult<u64> {
        let local = self.actors.lookup(name);
        if local.is_ok() || !self.cluster.is_clustered() {
            return local;
        }
        let key = pb::lookup_actor_request::Key::Name(name.to_string());
        let location = self.ask_directory(key, format!("actor `{name}`")).await?;
        let id = location.actor_id;
        if let Some(remote) = self.route_from(location)? {
            self.cluster
                .actor_routes
                .lock()
                .unwrap()
                .entry(id)
                .or_insert(Route::There(remote));
        }
        Ok(id)
    }

    /// Tells the control plane an actor of this node is alive (`None`) or
    /// dead (why).
    pub fn report_actor_state(&self, actor: u64, dead: Option<&ReefError>) {
        let Ok(gcs) = self.cluster.gcs() else {
            return;
        };
        let state = if dead.is_some() { "DEAD" } else { "ALIVE" };
        let reason = dead.map(|e| e.to_string()).unwrap_or_default();
        tokio::spawn(async move {
            if let Err(status) = gcs.set_actor_state(actor, state, &reason).await {
                tracing::debug!("reporting actor {actor}'s state: {status}");
            }
        });
    }

    /// A driver session of this node ended: its anonymous actors elsewhere die.
    pub fn kill_remote_actors_of(self: &Arc<Self>, owner: u64) {
        let ids: Vec<u64> = self
            .cluster
            .actor_routes
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, r)| matches!(r, Route::There(a) if a.owner == Some(owner) && !a.named))
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            let node = self.clone();
            tokio::spawn(async move {
                if let Err(e) = node.kill_actor(id).await {
                    tracing::debug!("killing actor {id} of a closed session: {e}");
                }
            });
        }
    }

    /// A node died: actors there are dead, and anonymous actors it created
    /// here lost their driver.
    pub(crate) fn on_actor_node_dead(&self, node_id: &str) {
        let lost: Vec<RemoteActor> = {
            let mut routes = self.cluster.actor_routes.lock().unwrap();
            let ids: Vec<u64> = routes
                .iter()
                .filter(|(_, r)| matches!(r, Route::There(a) if a.node_id == node_id))
                .map(|(id, _)| *id)
                .collect();
            ids.into_iter()
                .filter_map(|id| {
                    let gone = Route::Gone(ReefError::new(
                        ErrorCode::NodeDied,
                        format!("node {node_id}, where actor {id} lived, died"),
                    ));
                    match routes.insert(id, gone) {
                        Some(Route::There(a)) => Some(a),
                        _ => None,
                    }
                })
                .collect()
        };
        for actor in lost {
            self.release_args(&actor.args);
        }
        let index = self
            .cluster
            .view()
            .nodes
            .iter()
            .find(|n| n.node_id == node_id)
            .map(|n| n.node_index);
        if let Some(index) = index {
            self.actors.kill_created_by(index);
        }
    }

    /// Creation of an actor placed here by another node.
    pub(crate) fn accept_actor(self: &Arc<Self>, create: pb::CreateActor, strategy: Strategy) {
        let id = create.req_id;
        let args = match crate::rpc::session::args(create.args) {
            Ok(args) => args,
            Err(e) => return self.actors.mark_dead(self, id, e),
        };
        let spec = ActorSpec {
            module: create.module,
            class: create.class,
            args,
            name: Some(create.name).filter(|n| !n.is_empty()),
            options: crate::rpc::session::options(create.options),
            owner: None,
            strategy,
        };
        if self.registry.get(&spec.module).is_ok() {
            let _ = self.actors.create(self, id, spec);
            return;
        }
        // First use of the module here: calls that come meanwhile are parked.
        let node = self.clone();
        tokio::spawn(async move {
            match node.fetch_module(&spec.module).await {
                Ok(()) => {
                    let _ = node.actors.create(&node, id, spec);
                }
                Err(e) => node.actors.mark_dead(&node, id, e),
            }
        });
    }

    /// A call forwarded here for an actor that lives (or will live) here.
    pub(crate) fn accept_call(self: &Arc<Self>, call: pb::CallActor) {
        let (actor, return_id) = (call.actor_id, call.return_id);
        if let Err(e) = self.store.create_pending(return_id, 1) {
            // A local waiter's placeholder for this result (see `hold_object`).
            if !matches!(self.store.is_ready(return_id), Ok(false))
                || self.store.add_ref(return_id).is_err()
            {
                return tracing::warn!("forwarded actor call {return_id:#x}: {e}");
            }
        }
        let args = match crate::rpc::session::args(call.args) {
            Ok(args) => args,
            Err(e) => {
                self.store.resolve(return_id, Err(e));
                return self.report_if_foreign(return_id);
            }
        };
        if let Err(e) = self.hold_args(&args) {
            self.store.resolve(return_id, Err(e));
            return self.report_if_foreign(return_id);
        }
        let call = Call {
            return_id,
            method: call.method,
            args,
        };
        self.actors.enqueue(self, actor, call);
    }
}

fn killed_route() -> Route {
    Route::Gone(ReefError::new(ErrorCode::ActorDead, "the actor was killed"))
}
