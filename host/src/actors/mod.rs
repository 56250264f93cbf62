//! Actors: one instance of an exported class that lives across calls. Calls
//! run one at a time in submission order; a trap kills the actor (its
//! instance cannot be trusted after it), a returned error fails only its call.
//!
//! [`ActorManager`] keeps **one entry per actor** this node knows, and so
//! one queue of calls per actor, wherever the actor is:
//!
//! * `Waiting` — being placed by this node, looked up in the control plane,
//!   or (on its own node) created elsewhere and not arrived yet: calls wait
//!   in the entry, in order, and go on when it settles;
//! * `Local` — lives here: calls go to its mailbox (`local.rs`);
//! * `Remote` — lives on another node: calls go straight there over the
//!   batched peer link, never through the head; results come back like
//!   forwarded tasks' (`ObjectsReady` to the result's owner);
//! * `Gone` — dead, or never to be reached: calls fail with the cause.
//!
//! **Creation.** The node a driver (or guest) asks allocates the actor id
//! (`ids::actor_id`), and the control plane places the actor (`PlaceActor`:
//! resources, strategy, bundle) and claims its name cluster-wide. Placed
//! here, it is created here; placed elsewhere, the creation is forwarded to
//! that node (`Peer.Forward`). A create returns once the actor is placed.
//!
//! **Lifetimes.** An actor dies with the driver session that created it
//! (its node kills it when the driver disconnects) or with the node that
//! created it (the actor's node sees the death in the view), named or not,
//! unless it is *detached* (`Lifecycle::detached`): then only `kill` ends it.
//!
//! **Restarts** (`Lifecycle::max_restarts`). An actor whose instance fails
//! (a trap, not a returned error) is restarted in place: a new instance,
//! `actor-init` again with the original arguments, the calls in its mailbox
//! kept. An actor whose node dies is marked RESTARTING by the control plane
//! and placed again by the node that created it (which holds its
//! arguments); every node with calls for it waits in its entry until the
//! control plane says where it lives now. A call that was running when the
//! actor failed runs again, first, up to `max_task_retries` times, else fails
//! with `ACTOR_RESTARTING` (or `ACTOR_DEAD` when it will not restart).

mod local;
pub mod names;

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use reef_core::TenantId;
use reef_proto as pb;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::cluster::groups::{Bundles, Pool};
use crate::cluster::{rpc_error, to_map, Membership};
use crate::config::NodeConfig;
use crate::error::{ErrorCode, ReefError, ReefResult};
use crate::guest::HostServices;
use crate::ids::{actor_id, creator_index};
use crate::logs::LogDir;
use crate::metrics::Metrics;
use crate::module::Module;
use crate::modules::Registry;
use crate::objects::{Forwarded, LostCall, ObjectDirectory};
use crate::placement::{group_removed, Strategy};
use crate::quotas::Quotas;
use crate::runtime::GuestRuntime;
use crate::scheduler::Resources;
use crate::spec::{
    actor_options_from_proto, args_from_proto, args_to_proto, options_to_proto, short, ActorSpec,
    ArgSpec, Call, Lifecycle, Placed,
};
use local::{dead, Actor, ActorState};

/// How long a call for an actor created elsewhere waits here for the
/// actor's creation (calls can overtake it: they come from any node).
const PARK_TIMEOUT: Duration = Duration::from_secs(30);

/// Actor states in the control plane's directory.
const DEAD: &str = "DEAD";
const RESTARTING: &str = "RESTARTING";

/// Why calls wait in an entry.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Reason {
    /// This node asked the control plane to place the actor.
    Placing,
    /// This node asked the control plane where the actor lives.
    LookingUp,
    /// The actor will live here: its creation is on its way.
    Arriving,
    /// Its node died: this node waits for it to be placed again.
    Restarting,
}

/// What this node knows about one actor.
enum Entry {
    Waiting {
        reason: Reason,
        calls: Vec<Call>,
        /// Killed while waiting: killed once it settles.
        kill: bool,
        /// Calls that were running when the actor failed (and why it did)
        /// and may not run again: they fail once it is known whether it
        /// restarts.
        doomed: Vec<(Call, ReefError)>,
    },
    Local(Arc<Actor>),
    Remote(RemoteActor),
    /// Calls fail with this error as it is, except those of a tenant other
    /// than the actor's (when known), which are told there is no such actor.
    Gone(ReefError, Option<TenantId>),
}

struct RemoteActor {
    node_id: String,
    /// The driver session on this node that created it (it dies with it
    /// unless detached).
    owner: Option<u64>,
    lifecycle: Lifecycle,
    /// On the node that created it: how, to place it again after its node
    /// died; its arguments are held here until the actor dies.
    spec: Option<Box<ActorSpec>>,
}

impl RemoteActor {
    fn args(&self) -> &[ArgSpec] {
        self.spec.as_ref().map_or(&[], |s| &s.args)
    }
}

fn waiting(reason: Reason, calls: Vec<Call>) -> Entry {
    Entry::Waiting {
        reason,
        calls,
        kill: false,
        doomed: Vec::new(),
    }
}

/// What the control plane's directory says of an actor created elsewhere.
struct Lookup {
    /// Where its calls go (`None`: here), or why none can.
    route: ReefResult<Option<RemoteActor>>,
    /// Whose actor it is, when the directory knows.
    tenant: Option<TenantId>,
}

impl Lookup {
    fn failed(e: ReefError) -> Lookup {
        Lookup {
            route: Err(e),
            tenant: None,
        }
    }
}

/// How long a node waits for an actor the control plane is restarting.
const RESTART_TIMEOUT: Duration = Duration::from_secs(60);

/// A summary row for `host status`.
pub struct ActorRow {
    pub id: u64,
    pub name: String,
    pub module: String,
    pub class: String,
    pub state: String,
    pub tenant: TenantId,
}

/// What the actor manager is built from (see `node.rs`).
pub struct ActorDeps {
    pub config: Arc<NodeConfig>,
    pub logs: Arc<LogDir>,
    pub objects: Arc<ObjectDirectory>,
    pub registry: Arc<Registry>,
    pub cluster: Arc<Membership>,
    pub bundles: Arc<Bundles>,
    pub guests: Arc<GuestRuntime>,
    pub metrics: Arc<Metrics>,
    pub quotas: Arc<Quotas>,
}

pub struct ActorManager {
    config: Arc<NodeConfig>,
    logs: Arc<LogDir>,
    objects: Arc<ObjectDirectory>,
    registry: Arc<Registry>,
    cluster: Arc<Membership>,
    bundles: Arc<Bundles>,
    guests: Arc<GuestRuntime>,
    metrics: Arc<Metrics>,
    quotas: Arc<Quotas>,
    /// What actors' guests may reach (set once at start).
    host: OnceLock<HostServices>,
    next_id: AtomicU64,
    entries: Mutex<HashMap<u64, Entry>>,
    /// Names of the actors that live here.
    names: Mutex<HashMap<String, u64>>,
    /// The node is stopping (`kill_all`): its actors' creators are not told
    /// they ended.
    stopping: AtomicBool,
}

impl ActorManager {
    pub fn new(deps: ActorDeps) -> Self {
        ActorManager {
            config: deps.config,
            logs: deps.logs,
            objects: deps.objects,
            registry: deps.registry,
            cluster: deps.cluster,
            bundles: deps.bundles,
            guests: deps.guests,
            metrics: deps.metrics,
            quotas: deps.quotas,
            host: OnceLock::new(),
            next_id: AtomicU64::new(0),
            entries: Mutex::default(),
            names: Mutex::default(),
            stopping: AtomicBool::new(false),
        }
    }

    /// Gives the manager the host services its guests get (once, at start).
    pub fn set_host(&self, host: HostServices) {
        let _ = self.host.set(host);
    }

    fn host(&self) -> ReefResult<&HostServices> {
        self.host
            .get()
            .ok_or_else(|| ReefError::internal("the actor service is not started"))
    }

    /// Whether `actor` is known here and not gone (placing, restarting, alive).
    fn is_alive(&self, actor: u64) -> bool {
        matches!(
            self.entries.lock().unwrap().get(&actor),
            Some(Entry::Waiting { .. } | Entry::Local(_) | Entry::Remote(_))
        )
    }

    /// Whether calls for `actor` may come before its creation (it was
    /// created by another node of a cluster).
    fn created_elsewhere(&self, actor: u64) -> bool {
        self.cluster.is_clustered() && creator_index(actor) != self.cluster.index()
    }

    /// Creates an actor somewhere in the cluster; returns its id at once and
    /// a receiver for the placement's outcome. The node's call limits and
    /// the tenant's quotas are checked first (`INFEASIBLE`, `QUOTA_EXCEEDED`).
    pub fn create(self: &Arc<Self>, mut spec: ActorSpec) -> ReefResult<(u64, Placed)> {
        self.config.check_call(&spec.options, "the actor")?;
        self.bundles.check_tenant(&spec.strategy, &spec.tenant)?;
        let cpus = spec.options.actor_resources().cpus;
        self.quotas.check_call(
            &spec.tenant,
            "the actor",
            cpus,
            &mut spec.options,
            &self.config.call_defaults(),
        )?;
        let slot = self
            .quotas
            .take_actor(&spec.tenant, |id| self.is_alive(id))?;
        // Names are claimed in the tenant's namespace (see `names`).
        spec.name = spec
            .name
            .filter(|n| !n.is_empty())
            .map(|n| names::scoped(&spec.tenant, &n));
        match self.check_class(&spec.module, &spec.class) {
            // Registered through another node: fetched by hash below.
            Err(e) if e.code == ErrorCode::UnknownModule && self.cluster.is_clustered() => {}
            other => {
                other?;
            }
        }
        let id = actor_id(
            self.cluster.index(),
            self.next_id.fetch_add(1, Ordering::Relaxed) + 1,
        );
        let (tx, rx) = oneshot::channel();
        if !self.cluster.is_clustered() {
            self.create_here(id, spec)?;
            slot.record(id);
            let _ = tx.send(Ok(()));
            return Ok((id, rx));
        }
        self.entries
            .lock()
            .unwrap()
            .insert(id, waiting(Reason::Placing, Vec::new()));
        slot.record(id);
        let this = self.clone();
        tokio::spawn(async move {
            let tenant = spec.tenant.clone();
            let placed = this.place(id, spec).await;
            let outcome = placed.as_ref().map(|_| ()).map_err(Clone::clone);
            this.settle(id, placed, Some(tenant));
            let _ = tx.send(outcome);
        });
        Ok((id, rx))
    }

    /// Asks the control plane where the actor goes and starts it there.
    /// `Ok(None)`: it lives here.
    async fn place(self: &Arc<Self>, id: u64, spec: ActorSpec) -> ReefResult<Option<RemoteActor>> {
        // Its tenant may run the module (see `module_owners`): a module it
        // may not run fails as an unknown hash does.
        self.registry
            .owners()
            .check(&spec.module, &spec.tenant)
            .await?;
        if self.registry.get(&spec.module).is_err() {
            self.registry.fetch(self.host()?, &spec.module).await?;
            self.check_class(&spec.module, &spec.class)?;
        }
        let location = self.ask_placement(id, &spec, false).await?;
        if location.node_id == self.cluster.node_id() {
            self.create_here(id, spec)?;
            return Ok(None);
        }
        if let Err(e) = self.objects.hold_args(&spec.args) {
            self.report_state(id, Some(&e));
            return Err(e);
        }
        self.start_remote(id, spec, location.node_id)
    }

    /// The control plane's placement for an actor (`restart`: again, after
    /// its node died).
    async fn ask_placement(
        &self,
        id: u64,
        spec: &ActorSpec,
        restart: bool,
    ) -> ReefResult<pb::ActorLocation> {
        let request = pb::PlaceActorRequest {
            actor_id: id,
            module: spec.module.clone(),
            class: spec.class.clone(),
            name: spec.name.clone().unwrap_or_default(),
            resources: Some(to_map(&spec.options.actor_resources())),
            strategy: Some(spec.strategy.to_proto()),
            requester_node_id: self.cluster.node_id().to_string(),
            job_id: 0,
            lifecycle: Some(spec.lifecycle.to_proto()),
            restart,
            tenant: Some(spec.tenant.to_wire()),
        };
        self.cluster
            .gcs()?
            .place_actor(request)
            .await
            .map_err(|s| rpc_error(&format!("placing actor `{}`", spec.class), s))
    }

    /// Sends an actor's creation to the node it was placed on; its
    /// arguments are held (and stay held in the returned entry).
    fn start_remote(
        &self,
        id: u64,
        spec: ActorSpec,
        node_id: String,
    ) -> ReefResult<Option<RemoteActor>> {
        let sent = self.cluster.peer(&node_id).map(|link| {
            link.forward(pb::ForwardedWork {
                work: Some(pb::forwarded_work::Work::CreateActor(pb::CreateActor {
                    req_id: id,
                    module: spec.module.clone(),
                    class: spec.class.clone(),
                    args: args_to_proto(&spec.args),
                    name: spec.name.clone().unwrap_or_default(),
                    options: Some(options_to_proto(&spec.options)),
                    strategy: Some(spec.strategy.to_proto()),
                    lifecycle: Some(spec.lifecycle.to_proto()),
                })),
                strategy: Some(spec.strategy.to_proto()),
                hops: 1,
                tenant: spec.tenant.to_wire(),
            })
        });
        if let Err(e) = sent {
            self.objects.release_args(&spec.args);
            self.report_state(id, Some(&e));
            return Err(e);
        }
        Ok(Some(RemoteActor {
            node_id,
            owner: spec.owner,
            lifecycle: spec.lifecycle,
            spec: Some(Box::new(spec)),
        }))
    }

    /// Places again an actor this node created, whose node died (the
    /// control plane marked it RESTARTING); its arguments are still held.
    async fn restart(self: Arc<Self>, id: u64, mut spec: ActorSpec) {
        let tenant = spec.tenant.clone();
        let placed = match self.ask_placement(id, &spec, true).await {
            Ok(location) => {
                spec.lifecycle.num_restarts = location.num_restarts;
                tracing::info!(
                    actor = id,
                    node = %location.node_id,
                    restart = location.num_restarts,
                    "restarting actor"
                );
                if location.node_id == self.cluster.node_id() {
                    let args = spec.args.clone();
                    let created = self.create_here(id, spec).map(|()| None);
                    // The actor holds its arguments itself now.
                    self.objects.release_args(&args);
                    created
                } else {
                    self.start_remote(id, spec, location.node_id)
                }
            }
            Err(e) => {
                self.objects.release_args(&spec.args);
                Err(if e.code == ErrorCode::ActorDead {
                    e
                } else {
                    dead(&e)
                })
            }
        };
        self.settle(id, placed, Some(tenant));
    }

    /// Records where an actor is (or why it is not) and lets the calls that
    /// waited for that go, in order. A local actor settled itself when it
    /// was created (`create_here`).
    /// `tenant`: whose actor it is, when known (another tenant's calls of a
    /// dead actor then answer as a made-up id does).
    fn settle(
        self: &Arc<Self>,
        id: u64,
        placed: ReefResult<Option<RemoteActor>>,
        tenant: Option<TenantId>,
    ) {
        let new = match placed {
            Ok(None) => return,
            Ok(Some(remote)) => Entry::Remote(remote),
            Err(e) => Entry::Gone(e, tenant),
        };
        let outcome = match &new {
            Entry::Gone(e, _) => Err(e.clone()),
            _ => Ok(()),
        };
        let old = {
            let mut entries = self.entries.lock().unwrap();
            // Created here meanwhile: that entry stays.
            if matches!(entries.get(&id), Some(Entry::Local(_))) {
                return;
            }
            entries.insert(id, new)
        };
        if let Some(Entry::Waiting {
            calls,
            kill,
            doomed,
            ..
        }) = old
        {
            self.fail_doomed(id, doomed, outcome);
            for call in calls {
                self.dispatch(id, call);
            }
            if kill {
                self.kill_later(id);
            }
        }
    }

    /// Fails the calls that were running when actor `id` failed and may not
    /// run again: `ACTOR_RESTARTING` when it restarts (`Ok`), else with why
    /// it will not.
    fn fail_doomed(&self, id: u64, doomed: Vec<(Call, ReefError)>, outcome: ReefResult<()>) {
        for (call, cause) in doomed {
            let e = match &outcome {
                Ok(()) => restarting(id, &call, &cause),
                Err(e) => dead(e),
            };
            self.objects.fail(call.return_id, e, &call.args);
        }
    }

    /// Fails the doomed calls of a waiting entry now (the actor restarts).
    fn fail_doomed_now(&self, id: u64) {
        let doomed = match self.entries.lock().unwrap().get_mut(&id) {
            Some(Entry::Waiting { doomed, .. }) => std::mem::take(doomed),
            _ => return,
        };
        self.fail_doomed(id, doomed, Ok(()));
    }

    fn kill_later(self: &Arc<Self>, id: u64) {
        let this = self.clone();
        tokio::spawn(async move {
            if let Err(e) = this.kill(id, None).await {
                tracing::warn!("killing actor {id}: {e}");
            }
        });
    }

    /// The module and class an actor is made from, checked.
    fn check_class(&self, module: &str, class: &str) -> ReefResult<Arc<Module>> {
        let module = self.registry.get(module)?;
        if module.info.actor(class).is_none() {
            return Err(ReefError::new(
                ErrorCode::UnknownFunction,
                format!(
                    "module {} exports no actor class `{class}` (classes: {})",
                    short(&module.hash),
                    module
                        .info
                        .actors
                        .iter()
                        .map(|a| a.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        Ok(module)
    }

    /// Creates actor `id` here and starts it (a failing constructor fails
    /// the actor's calls with its error). Calls that waited for it are
    /// queued first.
    fn create_here(self: &Arc<Self>, id: u64, spec: ActorSpec) -> ReefResult<()> {
        let tenant = spec.tenant.clone();
        let result = self.start(id, spec);
        if let Err(e) = &result {
            self.mark_dead(id, tenant, e.clone());
        }
        result
    }

    fn start(self: &Arc<Self>, id: u64, spec: ActorSpec) -> ReefResult<()> {
        let ActorSpec {
            module,
            class,
            args,
            name,
            options,
            owner,
            strategy,
            lifecycle,
            tenant,
        } = spec;
        let module = self.check_class(&module, &class)?;
        let resources = options.actor_resources();
        let pool = self.bundles.pool_for(&strategy, &resources)?;
        // An actor's instance lives as long as it does: past the tenant's
        // instances quota its creation fails rather than waits.
        let reserved = self.quotas.reserve_instance(&tenant, &pool.scheduler)?;
        let name = name.filter(|n| !n.is_empty());
        if let Some(n) = &name {
            let mut names = self.names.lock().unwrap();
            if names.contains_key(n) {
                return Err(ReefError::new(
                    ErrorCode::NameTaken,
                    format!("an actor named `{n}` already exists"),
                ));
            }
            names.insert(n.clone(), id);
        }
        if let Err(e) = self.objects.hold_args(&args) {
            if let Some(n) = &name {
                self.names.lock().unwrap().remove(n);
            }
            return Err(e);
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let actor = Arc::new(Actor {
            id,
            name,
            module,
            class,
            owner,
            strategy,
            tenant,
            lifecycle,
            restarts: AtomicU32::new(lifecycle.num_restarts),
            mailbox: tx,
            state: Mutex::new(ActorState::Starting),
            kill: CancellationToken::new(),
            reserved: Mutex::new(reserved),
        });
        let waiting = self
            .entries
            .lock()
            .unwrap()
            .insert(id, Entry::Local(actor.clone()));
        let (calls, kill, doomed) = match waiting {
            Some(Entry::Waiting {
                calls,
                kill,
                doomed,
                ..
            }) => (calls, kill, doomed),
            _ => (Vec::new(), false, Vec::new()),
        };
        self.fail_doomed(id, doomed, Ok(()));
        for call in calls {
            self.enqueue(&actor, call);
        }
        let limits = self.config.limits(&options);
        let this = self.clone();
        self.guests
            .spawn(async move { this.run(actor, args, resources, pool, limits, rx).await });
        if kill {
            self.kill_later(id);
        }
        Ok(())
    }

    /// The actor's life here: construct, serve calls until killed or
    /// trapped, then fail what is left in its mailbox.
    async fn run(
        self: Arc<Self>,
        actor: Arc<Actor>,
        args: Vec<ArgSpec>,
        resources: Resources,
        pool: Pool,
        limits: crate::spec::Limits,
        mut mailbox: mpsc::UnboundedReceiver<Call>,
    ) {
        // Removing the actor's placement group kills it.
        let group_watch = pool.removed.clone().map(|removed| {
            let (this, actor) = (self.clone(), actor.clone());
            tokio::spawn(async move {
                removed.cancelled().await;
                this.kill_local_with(&actor, group_removed(actor.strategy.group().unwrap_or(0)));
            })
        });
        let cause = match self.host() {
            Ok(host) => {
                let serving = local::Serving {
                    host,
                    objects: &self.objects,
                    logs: &self.logs,
                    args: &args,
                    resources: &resources,
                    pool: &pool.scheduler,
                    share: self.quotas.share(&actor.tenant),
                    limits,
                    metrics: &self.metrics,
                };
                self.serve_with_restarts(&serving, &actor, &mut mailbox)
                    .await
            }
            Err(e) => e,
        };
        if let Some(watch) = group_watch {
            watch.abort();
        }
        // Killed before its instance was granted: its place goes back now.
        drop(actor.reserved.lock().unwrap().take());
        self.objects.release_args(&args);
        // A kill's reason (e.g. its placement group was removed) wins.
        let cause = {
            let mut state = actor.state.lock().unwrap();
            match &*state {
                ActorState::Dead(reason) => reason.clone(),
                _ => {
                    *state = ActorState::Dead(cause.clone());
                    cause
                }
            }
        };
        tracing::info!(actor = actor.id, "actor stopped: {cause}");
        self.report_state(actor.id, Some(&cause));
        self.tell_creator(actor.id, &cause);
        mailbox.close();
        while let Some(call) = mailbox.recv().await {
            self.objects.fail(call.return_id, dead(&cause), &call.args);
        }
        self.entries.lock().unwrap().insert(
            actor.id,
            Entry::Gone(dead(&cause), Some(actor.tenant.clone())),
        );
        self.release_name(&actor);
    }

    /// Serves the actor, making a new instance each time one fails while it
    /// may restart; returns why it stopped for good.
    async fn serve_with_restarts(
        &self,
        serving: &local::Serving<'_>,
        actor: &Arc<Actor>,
        mailbox: &mut mpsc::UnboundedReceiver<Call>,
    ) -> ReefError {
        // Followers of the actor's log stop when it ends for good, however it
        // ends (not at an in-place restart).
        let _ended = local::ActorLogEnd(serving.logs, actor.id);
        let mut retry = VecDeque::new();
        loop {
            let stopped = local::serve(serving, actor, &mut retry, mailbox, || {
                self.report_state(actor.id, None)
            })
            .await;
            let cause = stopped.cause;
            let restart = !stopped.in_init
                && !actor.kill.is_cancelled()
                && actor.dead_error().is_none()
                && actor.may_restart();
            if let Some(mut call) = stopped.call {
                if restart && actor.lifecycle.may_retry(call.retries) {
                    call.retries += 1;
                    retry.push_front(call);
                } else {
                    self.objects.fail(call.return_id, cause.clone(), &call.args);
                }
            }
            if !restart {
                return cause;
            }
            let n = actor.restarts.fetch_add(1, Ordering::Relaxed) + 1;
            tracing::warn!(actor = actor.id, restart = n, "restarting actor: {cause}");
            {
                let mut state = actor.state.lock().unwrap();
                if matches!(*state, ActorState::Dead(_)) {
                    return cause;
                }
                *state = ActorState::Restarting(cause.clone());
            }
            self.report_restarting(actor.id, &cause);
        }
    }

    /// Remembers why actor `id` of `tenant` cannot run here (another
    /// tenant's call hears of it as of a missing actor); fails the calls
    /// that waited for it, and tells the node that created it, when another.
    fn mark_dead(&self, id: u64, tenant: TenantId, cause: ReefError) {
        let old = self
            .entries
            .lock()
            .unwrap()
            .insert(id, Entry::Gone(dead(&cause), Some(tenant)));
        self.report_state(id, Some(&cause));
        self.tell_creator(id, &cause);
        if let Some(Entry::Waiting { calls, doomed, .. }) = old {
            self.fail_doomed(id, doomed, Err(cause.clone()));
            for call in calls {
                self.objects.fail(call.return_id, dead(&cause), &call.args);
            }
        }
    }

    /// Calls a method of an actor anywhere in the cluster. The result
    /// object `return_id` is created here at once; a call that cannot run
    /// seals it with the error. Fails only when the id is already in use.
    pub fn call(
        self: &Arc<Self>,
        actor: u64,
        return_id: u64,
        method: String,
        args: Vec<ArgSpec>,
        caller: Option<TenantId>,
    ) -> ReefResult<()> {
        self.objects.store().create_pending(return_id, 1)?;
        if let Err(e) = self.objects.hold_args(&args) {
            self.objects.seal(return_id, Err(e));
            return Ok(());
        }
        let call = Call {
            return_id,
            method,
            args,
            retries: 0,
            caller,
        };
        self.dispatch(actor, call);
        Ok(())
    }

    /// Sends a call on its way: to the actor's mailbox, to its node, or
    /// into its entry's queue until it is known where the actor is.
    fn dispatch(self: &Arc<Self>, actor: u64, call: Call) {
        let mut entries = self.entries.lock().unwrap();
        match entries.get_mut(&actor) {
            Some(Entry::Local(a)) => {
                let a = a.clone();
                drop(entries);
                self.enqueue(&a, call);
            }
            Some(Entry::Waiting { calls, .. }) => calls.push(call),
            Some(Entry::Remote(remote)) => {
                let node_id = remote.node_id.clone();
                drop(entries);
                self.forward_call(actor, call, node_id);
            }
            Some(Entry::Gone(e, tenant)) => {
                // Another tenant's dead actor answers as a missing one does.
                let e = match (&call.caller, tenant) {
                    (Some(caller), Some(tenant)) if caller != tenant => no_actor(actor),
                    _ => e.clone(),
                };
                drop(entries);
                self.objects.fail(call.return_id, e, &call.args);
            }
            None if self.created_elsewhere(actor) => {
                entries.insert(actor, waiting(Reason::LookingUp, vec![call]));
                drop(entries);
                let this = self.clone();
                tokio::spawn(async move {
                    let found = this.look_up(actor).await;
                    this.settle(actor, found.route, found.tenant);
                });
            }
            None => {
                drop(entries);
                let e = no_actor(actor);
                self.objects.fail(call.return_id, e, &call.args);
            }
        }
    }

    /// Queues a call in a local actor's mailbox.
    fn enqueue(&self, actor: &Actor, call: Call) {
        if call.caller.as_ref().is_some_and(|t| *t != actor.tenant) {
            // Another tenant's actor answers as a missing one does.
            let e = no_actor(actor.id);
            return self.objects.fail(call.return_id, e, &call.args);
        }
        let class = actor
            .module
            .info
            .actor(&actor.class)
            .expect("checked at creation");
        if !class.methods.iter().any(|m| m == &call.method) {
            let e = ReefError::new(
                ErrorCode::UnknownFunction,
                format!(
                    "actor class `{}` has no method `{}` (methods: {})",
                    actor.class,
                    call.method,
                    class.methods.join(", ")
                ),
            );
            return self.objects.fail(call.return_id, e, &call.args);
        }
        if let Some(e) = actor.dead_error() {
            return self.objects.fail(call.return_id, e, &call.args);
        }
        if let Err(call) = actor.mailbox.send(call) {
            let e = ReefError::new(ErrorCode::ActorDead, "the actor has stopped");
            self.objects.fail(call.0.return_id, e, &call.0.args);
        }
    }

    fn forward_call(&self, actor: u64, call: Call, node_id: String) {
        let link = match self.cluster.peer(&node_id) {
            Ok(link) => link,
            Err(e) => return self.objects.fail(call.return_id, e, &call.args),
        };
        let Call {
            return_id,
            method,
            args,
            retries,
            caller,
        } = call;
        let work = pb::ForwardedWork {
            work: Some(pb::forwarded_work::Work::CallActor(pb::CallActor {
                actor_id: actor,
                return_id,
                method: method.clone(),
                args: args_to_proto(&args),
                caller_tenant: caller.as_ref().map(TenantId::to_wire).unwrap_or_default(),
                caller_unrestricted: caller.is_none(),
            })),
            strategy: None,
            hops: 1,
            // The actor's node knows whose actor it is.
            tenant: String::new(),
        };
        self.objects.note_forwarded(
            return_id,
            Forwarded {
                node_id,
                what: format!("a call of method `{method}` of actor {actor}"),
                task: None,
                args,
                actor_call: Some((actor, method.clone(), retries, caller)),
            },
        );
        link.forward(work);
    }

    /// Where the control plane says an actor created elsewhere lives;
    /// while it is still placed on a node that died (it is restarting),
    /// asks again until it is placed anew or dead.
    async fn look_up(&self, actor: u64) -> Lookup {
        let deadline = tokio::time::Instant::now() + RESTART_TIMEOUT;
        // Quick at first (a restart is often placed within tens of ms),
        // then easing off the control plane.
        let mut backoff =
            reef_gcs::Backoff::new(Duration::from_millis(20), Duration::from_millis(500));
        loop {
            let key = pb::lookup_actor_request::Key::ActorId(actor);
            let location = match self.ask_directory(key, format!("actor {actor}")).await {
                Ok(location) => location,
                // As an id known to belong to another tenant is answered.
                Err(e) if e.code == ErrorCode::UnknownActor => {
                    return Lookup::failed(no_actor(actor))
                }
                Err(e) => return Lookup::failed(e),
            };
            let tenant = location.tenant.as_deref().map(TenantId::from_wire);
            if location.state == DEAD || !self.node_gone(&location.node_id) {
                return Lookup {
                    route: self.route_from(location),
                    tenant,
                };
            }
            self.fail_doomed_now(actor);
            if tokio::time::Instant::now() >= deadline {
                let e = ReefError::new(
                    ErrorCode::ActorRestarting,
                    format!(
                        "actor {actor} was still restarting after {RESTART_TIMEOUT:?} ({})",
                        location.death_reason
                    ),
                );
                return Lookup {
                    route: Err(e),
                    tenant,
                };
            }
            tokio::time::sleep(backoff.next_delay()).await;
        }
    }

    /// Whether a node is dead (or not in this node's view).
    fn node_gone(&self, node_id: &str) -> bool {
        self.cluster
            .node_view(node_id)
            .is_none_or(|n| n.state == pb::NodeState::Dead as i32)
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
        if location.state == DEAD {
            return Err(ReefError::new(
                ErrorCode::ActorDead,
                format!(
                    "actor {} is dead: {}",
                    location.actor_id, location.death_reason
                ),
            ));
        }
        if location.node_id == self.cluster.node_id() {
            return Ok(None);
        }
        let lifecycle = Lifecycle {
            num_restarts: location.num_restarts,
            ..Lifecycle::from_proto(location.lifecycle)
        };
        Ok(Some(RemoteActor {
            node_id: location.node_id,
            owner: None,
            lifecycle,
            spec: None,
        }))
    }

    /// Kills an actor wherever it lives, for `caller`: a tenant's driver
    /// may kill only its tenant's actors (another tenant's answers as a
    /// made-up id does, `UNKNOWN_ACTOR`, checked by the node the actor
    /// lives on); `None` is the admin or the node itself.
    pub async fn kill(self: &Arc<Self>, actor: u64, caller: Option<&TenantId>) -> ReefResult<()> {
        let killed = self.kill_for(actor, caller).await;
        match killed {
            // One answer for every id a tenant may not kill, wherever the
            // lookup stopped: it tells nothing of whether the actor exists.
            Err(e) if caller.is_some() && e.code == ErrorCode::UnknownActor => Err(no_actor(actor)),
            other => other,
        }
    }

    async fn kill_for(self: &Arc<Self>, actor: u64, caller: Option<&TenantId>) -> ReefResult<()> {
        if caller.is_some() {
            // A waiting entry does not know whose actor it is yet.
            self.until_settled(actor).await;
        }
        // What to do, decided under the lock (never held across an await).
        enum Next {
            Done,
            Route(RemoteActor),
            /// Only its node knows whose it is: ask it first.
            AskNode(String),
            Find,
        }
        let next = {
            let mut entries = self.entries.lock().unwrap();
            match entries.get_mut(&actor) {
                Some(Entry::Local(a)) => {
                    check_tenant(actor, &a.tenant, caller)?;
                    Next::Find
                }
                Some(Entry::Waiting { kill, .. }) if caller.is_none() => {
                    *kill = true;
                    Next::Done
                }
                Some(Entry::Gone(_, tenant)) => {
                    if let Some(tenant) = tenant {
                        check_tenant(actor, tenant, caller)?;
                    }
                    Next::Done
                }
                Some(Entry::Remote(remote)) => {
                    if let (Some(spec), Some(_)) = (&remote.spec, caller) {
                        check_tenant(actor, &spec.tenant, caller)?;
                    }
                    if remote.spec.is_some() || caller.is_none() {
                        let tenant = remote.spec.as_ref().map(|s| s.tenant.clone());
                        match entries.insert(actor, Entry::Gone(killed(), tenant)) {
                            Some(Entry::Remote(remote)) => Next::Route(remote),
                            _ => unreachable!("matched above"),
                        }
                    } else {
                        Next::AskNode(remote.node_id.clone())
                    }
                }
                // Still waiting after `until_settled`: refused below by
                // the node that knows it, or unknown.
                Some(Entry::Waiting { .. }) | None => Next::Find,
            }
        };
        let remote = match next {
            Next::Done => return Ok(()),
            Next::Route(remote) => Some(remote),
            Next::AskNode(node_id) => return self.kill_on(actor, &node_id, caller).await,
            Next::Find => None,
        };
        let remote = match remote {
            Some(remote) => remote,
            None if !self.is_here(actor) && self.created_elsewhere(actor) => {
                let found = self.look_up(actor).await;
                if let (Some(tenant), Some(_)) = (&found.tenant, caller) {
                    check_tenant(actor, tenant, caller)?;
                }
                match found.route? {
                    Some(remote) if caller.is_some() => {
                        return self.kill_on(actor, &remote.node_id, caller).await
                    }
                    Some(remote) => remote,
                    None => return self.kill_local(actor, caller).await,
                }
            }
            None => return self.kill_local(actor, caller).await,
        };
        self.objects.release_args(remote.args());
        self.kill_on(actor, &remote.node_id, caller).await
    }

    /// Asks node `node_id` to kill its actor for `caller`.
    async fn kill_on(
        &self,
        actor: u64,
        node_id: &str,
        caller: Option<&TenantId>,
    ) -> ReefResult<()> {
        let link = self.cluster.peer(node_id)?;
        link.client
            .clone()
            .kill_actor(pb::KillActorRequest {
                actor_id: actor,
                caller_tenant: caller.map(TenantId::to_wire).unwrap_or_default(),
                caller_unrestricted: caller.is_none(),
            })
            .await
            .map_err(|s| rpc_error(&format!("killing actor {actor}"), s))?;
        if caller.is_some() {
            // Allowed: forget the route here too.
            let forgotten = {
                let mut entries = self.entries.lock().unwrap();
                match entries.get(&actor) {
                    Some(Entry::Remote(_)) => {
                        entries.insert(actor, Entry::Gone(killed(), caller.cloned()))
                    }
                    _ => None,
                }
            };
            if let Some(Entry::Remote(remote)) = forgotten {
                self.objects.release_args(remote.args());
            }
        }
        Ok(())
    }

    /// Waits (at most `PARK_TIMEOUT`) while this node's entry for `actor`
    /// is waiting for a placement or a lookup.
    async fn until_settled(&self, actor: u64) {
        let deadline = tokio::time::Instant::now() + PARK_TIMEOUT;
        while matches!(
            self.entries.lock().unwrap().get(&actor),
            Some(Entry::Waiting { .. })
        ) && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn is_here(&self, actor: u64) -> bool {
        matches!(
            self.entries.lock().unwrap().get(&actor),
            Some(Entry::Local(_))
        )
    }

    fn local(&self, actor: u64) -> ReefResult<Arc<Actor>> {
        match self.entries.lock().unwrap().get(&actor) {
            Some(Entry::Local(a)) => Ok(a.clone()),
            _ => Err(no_actor(actor)),
        }
    }

    /// Kills an actor of this node; returns once the control plane knows
    /// (so its name is free and lookups fail from then on).
    pub async fn kill_local(&self, actor: u64, caller: Option<&TenantId>) -> ReefResult<()> {
        let a = self.local(actor)?;
        check_tenant(actor, &a.tenant, caller)?;
        self.kill_local_with(&a, killed());
        let Ok(gcs) = self.cluster.gcs() else {
            return Ok(());
        };
        let killed = gcs.set_actor_state(actor, "DEAD", "the actor was killed");
        if let Err(status) = killed.await {
            tracing::debug!("reporting actor {actor} killed: {status}");
        }
        Ok(())
    }

    fn kill_local_with(&self, actor: &Actor, cause: ReefError) {
        actor.kill_with(cause);
        // The name is free at once, not when the actor's task has wound down.
        self.release_name(actor);
    }

    fn release_name(&self, actor: &Actor) {
        if let Some(n) = &actor.name {
            let mut names = self.names.lock().unwrap();
            if names.get(n) == Some(&actor.id) {
                names.remove(n);
            }
        }
    }

    /// Finds an actor of `tenant` named `name` anywhere in the cluster.
    pub async fn lookup(&self, tenant: &TenantId, name: &str) -> ReefResult<u64> {
        let shown = name;
        let name = &names::scoped(tenant, name);
        let local = self
            .names
            .lock()
            .unwrap()
            .get(name)
            .copied()
            .ok_or_else(|| {
                ReefError::new(
                    ErrorCode::UnknownActor,
                    format!("no actor is named `{shown}`"),
                )
            });
        if local.is_ok() || !self.cluster.is_clustered() {
            return local;
        }
        let key = pb::lookup_actor_request::Key::Name(name.to_string());
        let location = self.ask_directory(key, format!("actor `{shown}`")).await?;
        let id = location.actor_id;
        if self.node_gone(&location.node_id) {
            // Restarting: calls look it up again (and wait) until it lives.
            return Ok(id);
        }
        if let Some(remote) = self.route_from(location)? {
            self.entries
                .lock()
                .unwrap()
                .entry(id)
                .or_insert(Entry::Remote(remote));
        }
        Ok(id)
    }

    /// Tells the control plane an actor of this node is alive (`None`) or
    /// dead (why).
    fn report_state(&self, actor: u64, dead: Option<&ReefError>) {
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

    /// Tells the node that created `actor`, when another, that it ended for
    /// good here: that node lets go of its arguments and of its place under
    /// the tenant's actors quota. Not while this node stops: its death
    /// decides there (the actor may be placed anew).
    fn tell_creator(&self, actor: u64, cause: &ReefError) {
        if !self.created_elsewhere(actor) || self.stopping.load(Ordering::Relaxed) {
            return;
        }
        let Some(creator) = self.cluster.node_by_index(creator_index(actor)) else {
            return;
        };
        let Ok(link) = self.cluster.peer(&creator.node_id) else {
            return;
        };
        let request = pb::ActorEndedRequest {
            actor_id: actor,
            node_id: self.cluster.node_id().to_string(),
            cause: Some(cause.to_proto()),
        };
        let mut client = link.client.clone();
        tokio::spawn(async move {
            if let Err(status) = client.actor_ended(request).await {
                tracing::debug!("telling actor {actor}'s creator that it ended: {status}");
            }
        });
    }

    /// On the node that created `actor`: it ended for good on `node_id`
    /// (see `tell_creator`). A report from a node it no longer runs
    /// on (it was placed anew after that node died) is ignored.
    pub fn ended_elsewhere(&self, actor: u64, node_id: &str, cause: Option<ReefError>) {
        let mut entries = self.entries.lock().unwrap();
        let remote = match entries.get(&actor) {
            Some(Entry::Remote(r)) if r.node_id == node_id && r.spec.is_some() => r,
            _ => return,
        };
        let cause = cause.unwrap_or_else(|| ReefError::internal("no cause was given"));
        let tenant = remote.spec.as_ref().map(|s| s.tenant.clone());
        let Some(Entry::Remote(remote)) = entries.insert(actor, Entry::Gone(dead(&cause), tenant))
        else {
            return;
        };
        drop(entries);
        tracing::debug!(actor, "actor ended on node {node_id}: {cause}");
        self.objects.release_args(remote.args());
    }

    /// Tells the control plane an actor of this node restarts in place.
    fn report_restarting(&self, actor: u64, cause: &ReefError) {
        let Ok(gcs) = self.cluster.gcs() else {
            return;
        };
        let reason = cause.to_string();
        tokio::spawn(async move {
            if let Err(status) = gcs.set_actor_state(actor, RESTARTING, &reason).await {
                tracing::debug!("reporting actor {actor} restarting: {status}");
            }
        });
    }

    /// A driver session of this node ended: the actors it created die,
    /// here and elsewhere, unless detached.
    pub fn owner_left(self: &Arc<Self>, owner: u64) {
        let (here, elsewhere): (Vec<Arc<Actor>>, Vec<u64>) = {
            let entries = self.entries.lock().unwrap();
            let here = entries
                .values()
                .filter_map(|e| match e {
                    Entry::Local(a) if a.owner == Some(owner) && !a.lifecycle.detached => {
                        Some(a.clone())
                    }
                    _ => None,
                })
                .collect();
            let elsewhere = entries
                .iter()
                .filter(
                    |(_, e)| matches!(e, Entry::Remote(a) if a.owner == Some(owner) && !a.lifecycle.detached),
                )
                .map(|(id, _)| *id)
                .collect();
            (here, elsewhere)
        };
        for actor in here {
            self.kill_local_with(&actor, killed());
        }
        for id in elsewhere {
            let this = self.clone();
            tokio::spawn(async move {
                if let Err(e) = this.kill(id, None).await {
                    tracing::debug!("killing actor {id} of a closed session: {e}");
                }
            });
        }
    }

    /// A node died. Actors there: this node waits for them to be placed
    /// again (and places those it created itself), with the calls that were
    /// running there (`lost`) first when they may run again. Actors that
    /// node created here and that are not detached lost their creator.
    pub fn on_node_dead(self: &Arc<Self>, node_id: &str, lost: Vec<LostCall>) {
        let cause = |id: u64| {
            ReefError::new(
                ErrorCode::NodeDied,
                format!("node {node_id}, where actor {id} lived, died"),
            )
        };
        let mut affected: Vec<(u64, RemoteActor)> = Vec::new();
        let mut unrouted = Vec::new();
        {
            let mut entries = self.entries.lock().unwrap();
            let ids: Vec<u64> = entries
                .iter()
                .filter(|(_, e)| matches!(e, Entry::Remote(a) if a.node_id == node_id))
                .map(|(id, _)| *id)
                .collect();
            for id in ids {
                // An actor without restarts (the default) is gone with its
                // node: nothing to wait for or ask the control plane about.
                if let Some(Entry::Remote(a)) = entries.get(&id) {
                    if a.lifecycle.max_restarts == 0 {
                        let tenant = a.spec.as_ref().map(|s| s.tenant.clone());
                        entries.insert(id, Entry::Gone(cause(id), tenant));
                        continue;
                    }
                }
                let old = entries.insert(id, waiting(Reason::Restarting, Vec::new()));
                if let Some(Entry::Remote(a)) = old {
                    affected.push((id, a));
                }
            }
            for LostCall { actor, mut call } in lost {
                let lifecycle = affected
                    .iter()
                    .find(|(id, _)| *id == actor)
                    .map(|(_, a)| a.lifecycle);
                match (entries.get_mut(&actor), lifecycle) {
                    (Some(Entry::Waiting { calls, doomed, .. }), Some(lifecycle)) => {
                        if lifecycle.may_retry(call.retries) {
                            call.retries += 1;
                            calls.push(call);
                        } else {
                            doomed.push((call, cause(actor)));
                        }
                    }
                    _ => unrouted.push((actor, call)),
                }
            }
        }
        for (actor, call) in unrouted {
            self.objects.fail(call.return_id, cause(actor), &call.args);
        }
        for (id, remote) in affected {
            let this = self.clone();
            match remote.spec {
                Some(spec) => {
                    tokio::spawn(this.restart(id, *spec));
                }
                None => {
                    tokio::spawn(async move {
                        let found = this.look_up(id).await;
                        this.settle(id, found.route, found.tenant);
                    });
                }
            }
        }
        let Some(index) = self.cluster.index_of(node_id) else {
            return;
        };
        let orphans: Vec<Arc<Actor>> = self
            .entries
            .lock()
            .unwrap()
            .values()
            .filter_map(|e| match e {
                Entry::Local(a) if !a.lifecycle.detached && creator_index(a.id) == index => {
                    Some(a.clone())
                }
                _ => None,
            })
            .collect();
        for actor in orphans {
            let cause = ReefError::new(
                ErrorCode::OwnerDied,
                format!("node {node_id}, which created the actor, died"),
            );
            self.kill_local_with(&actor, cause);
        }
    }

    /// Stops every actor of this node (the node is stopping).
    pub fn kill_all(&self) {
        self.stopping.store(true, Ordering::Relaxed);
        let here: Vec<Arc<Actor>> = self
            .entries
            .lock()
            .unwrap()
            .values()
            .filter_map(|e| match e {
                Entry::Local(a) => Some(a.clone()),
                _ => None,
            })
            .collect();
        for actor in here {
            self.kill_local_with(&actor, killed());
        }
    }

    /// Creation of an actor placed here by another node.
    pub fn accept_create(
        self: &Arc<Self>,
        create: pb::CreateActor,
        strategy: Strategy,
        tenant: TenantId,
    ) {
        let id = create.req_id;
        let args = match args_from_proto(create.args) {
            Ok(args) => args,
            Err(e) => return self.mark_dead(id, tenant, e),
        };
        let spec = ActorSpec {
            module: create.module,
            class: create.class,
            args,
            name: Some(create.name).filter(|n| !n.is_empty()),
            options: actor_options_from_proto(create.options),
            owner: None,
            strategy,
            lifecycle: Lifecycle::from_proto(create.lifecycle),
            tenant,
        };
        if self.registry.get(&spec.module).is_ok() {
            let _ = self.create_here(id, spec);
            return;
        }
        // First use of the module here: calls that come meanwhile wait.
        let this = self.clone();
        tokio::spawn(async move {
            let fetched = match this.host() {
                Ok(host) => this.registry.fetch(host, &spec.module).await.map(|_| ()),
                Err(e) => Err(e),
            };
            match fetched {
                Ok(()) => {
                    let _ = this.create_here(id, spec);
                }
                Err(e) => this.mark_dead(id, spec.tenant, e),
            }
        });
    }

    /// A call forwarded here for an actor that lives (or will live) here.
    pub fn accept_call(self: &Arc<Self>, call: pb::CallActor) {
        let (actor, return_id) = (call.actor_id, call.return_id);
        let store = self.objects.store();
        if let Err(e) = store.create_pending(return_id, 1) {
            // A local waiter's placeholder for this result (see `ObjectDirectory::hold`).
            if !matches!(store.is_ready(return_id), Ok(false)) || store.add_ref(return_id).is_err()
            {
                return tracing::warn!("forwarded actor call {return_id:#x}: {e}");
            }
        }
        let args = match args_from_proto(call.args) {
            Ok(args) => args,
            Err(e) => return self.objects.seal(return_id, Err(e)),
        };
        if let Err(e) = self.objects.hold_args(&args) {
            return self.objects.seal(return_id, Err(e));
        }
        let caller = (!call.caller_unrestricted).then(|| TenantId::from_wire(&call.caller_tenant));
        let call = Call {
            return_id,
            method: call.method,
            args,
            retries: 0,
            caller,
        };
        let mut entries = self.entries.lock().unwrap();
        match entries.get_mut(&actor) {
            Some(Entry::Waiting { calls, .. }) => calls.push(call),
            None if self.created_elsewhere(actor) => {
                entries.insert(actor, waiting(Reason::Arriving, vec![call]));
                drop(entries);
                self.expire_arrival(actor);
            }
            _ => {
                drop(entries);
                self.dispatch(actor, call);
            }
        }
    }

    /// Calls that came for an actor whose creation never arrives fail.
    fn expire_arrival(self: &Arc<Self>, actor: u64) {
        let this = Arc::downgrade(self);
        tokio::spawn(async move {
            tokio::time::sleep(PARK_TIMEOUT).await;
            let Some(this) = this.upgrade() else { return };
            let calls = {
                let mut entries = this.entries.lock().unwrap();
                match entries.get(&actor) {
                    Some(Entry::Waiting {
                        reason: Reason::Arriving,
                        ..
                    }) => match entries.remove(&actor) {
                        Some(Entry::Waiting { calls, .. }) => calls,
                        _ => unreachable!("matched above"),
                    },
                    _ => return,
                }
            };
            for call in calls {
                let e = ReefError::new(
                    ErrorCode::UnknownActor,
                    format!("actor {actor} was not created on this node within {PARK_TIMEOUT:?}"),
                );
                this.objects.fail(call.return_id, e, &call.args);
            }
        });
    }

    pub fn rows(&self) -> Vec<ActorRow> {
        let mut rows: Vec<_> = self
            .entries
            .lock()
            .unwrap()
            .values()
            .filter_map(|e| match e {
                Entry::Local(a) => Some(ActorRow {
                    id: a.id,
                    name: a
                        .name
                        .as_deref()
                        .map(names::shown)
                        .unwrap_or_default()
                        .to_string(),
                    module: a.module.hash.clone(),
                    class: a.class.clone(),
                    tenant: a.tenant.clone(),
                    state: match (
                        &*a.state.lock().unwrap(),
                        a.restarts.load(Ordering::Relaxed),
                    ) {
                        (ActorState::Starting, _) => "starting".into(),
                        (ActorState::Alive, 0) => "alive".into(),
                        (ActorState::Alive, n) => format!("alive (restarts: {n})"),
                        (ActorState::Restarting(e), n) => format!("restarting (restart {n}): {e}"),
                        (ActorState::Dead(e), _) => format!("dead: {e}"),
                    },
                }),
                _ => None,
            })
            .collect();
        rows.sort_by_key(|r| r.id);
        rows
    }
}

/// The one answer for an actor id a caller may not use, whether it is
/// another tenant's (alive or dead) or made up.
fn no_actor(actor: u64) -> ReefError {
    ReefError::new(ErrorCode::UnknownActor, format!("no actor {actor}"))
}

/// Refuses `caller` (a tenant's driver; `None`: admin or node) another
/// tenant's actor, exactly as a made-up id is refused.
fn check_tenant(actor: u64, tenant: &TenantId, caller: Option<&TenantId>) -> ReefResult<()> {
    match caller {
        Some(caller) if caller != tenant => Err(no_actor(actor)),
        _ => Ok(()),
    }
}

fn killed() -> ReefError {
    ReefError::new(ErrorCode::ActorDead, "the actor was killed")
}

/// The error of a call that was running when actor `id` failed (`cause`)
/// and may not run again while it restarts.
fn restarting(id: u64, call: &Call, cause: &ReefError) -> ReefError {
    ReefError::new(
        ErrorCode::ActorRestarting,
        format!(
            "actor {id} is restarting after {cause}; call `{}` was running and is not retried \
             (max_task_retries)",
            call.method
        ),
    )
}
