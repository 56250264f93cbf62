//! Actors: one instance of an exported class that lives across calls. Calls
//! run one at a time in submission order; a trap kills the actor (its
//! instance cannot be trusted after it), a returned error fails only its call.
//!
//! This module is the node-local half: the actors that live *here*. Where an
//! actor is placed and how calls reach another node is `cluster::actors`.
//! An actor id is `creator_index << 40 | counter`: unique in the cluster and
//! naming the node that created it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::cluster::groups::Pool;
use crate::cluster::placement::Strategy;
use crate::error::{ErrorCode, ReefError, ReefResult};
use crate::guest::exec;
use crate::modules::Module;
use crate::node::Node;
use crate::scheduler::Resources;
use crate::store::ObjectId;
use crate::tasks::{short, ArgSpec, CallOptions};

/// The index of the node that created an actor.
pub fn creator_index(actor: u64) -> u32 {
    reef_core::ActorId(actor).creator_index()
}

/// How long a call for an actor created elsewhere waits here for the
/// actor's creation (calls can overtake it: they come from any node).
const PARK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// What `Actors::create` needs.
pub struct ActorSpec {
    pub module: String,
    pub class: String,
    pub args: Vec<ArgSpec>,
    /// Makes the actor findable with `lookup`.
    pub name: Option<String>,
    pub options: CallOptions,
    /// The driver session that created it; anonymous actors die with it.
    pub owner: Option<u64>,
    /// Where it runs (placement groups: which bundle's resources it uses).
    pub strategy: Strategy,
}

/// A method call: its result object already exists (pending) and its
/// object arguments are held.
pub struct Call {
    pub return_id: ObjectId,
    pub method: String,
    pub args: Vec<ArgSpec>,
}

#[derive(Clone, Debug)]
enum ActorState {
    Starting,
    Alive,
    Dead(ReefError),
}

pub struct Actor {
    pub id: u64,
    pub name: Option<String>,
    pub module: Arc<Module>,
    pub class: String,
    /// The driver session that created it; anonymous actors die with it.
    pub owner: Option<u64>,
    strategy: Strategy,
    mailbox: mpsc::UnboundedSender<Call>,
    state: Mutex<ActorState>,
    kill: CancellationToken,
}

/// A summary row for `host status`.
pub struct ActorRow {
    pub id: u64,
    pub name: String,
    pub module: String,
    pub class: String,
    pub state: String,
}

#[derive(Default)]
pub struct Actors {
    by_id: Mutex<HashMap<u64, Arc<Actor>>>,
    by_name: Mutex<HashMap<String, u64>>,
    next_id: AtomicU64,
    /// Why actors that lived here stopped (calls after that fail with it).
    dead: Mutex<HashMap<u64, ReefError>>,
    /// Calls for actors created elsewhere whose creation has not reached
    /// this node yet, in arrival order.
    parked: Mutex<HashMap<u64, Vec<Call>>>,
}

/// The module and class an actor is made from, checked.
pub fn check_class(node: &Node, module: &str, class: &str) -> ReefResult<Arc<Module>> {
    let module = node.registry.get(module)?;
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

impl Actors {
    /// A new cluster-unique actor id for the node with `index`.
    pub fn new_id(&self, index: u32) -> u64 {
        let n = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        reef_core::ActorId::new(index, n).0
    }

    pub fn is_here(&self, id: u64) -> bool {
        self.by_id.lock().unwrap().contains_key(&id)
    }

    /// Creates actor `id` here and starts it (a failing constructor fails
    /// the actor's calls with its error). Calls that arrived before it
    /// (parked) are queued first.
    pub fn create(&self, node: &Arc<Node>, id: u64, spec: ActorSpec) -> ReefResult<()> {
        let result = self.start(node, id, spec);
        if let Err(e) = &result {
            self.mark_dead(node, id, e.clone());
        }
        result
    }

    fn start(&self, node: &Arc<Node>, id: u64, spec: ActorSpec) -> ReefResult<()> {
        let ActorSpec {
            module,
            class,
            args,
            name,
            options,
            owner,
            strategy,
        } = spec;
        let module = check_class(node, &module, &class)?;
        let resources = options.resources.clone().unwrap_or_default();
        let pool = node.pool_for(&strategy, &resources)?;
        let name = name.filter(|n| !n.is_empty());
        if let Some(n) = &name {
            let mut names = self.by_name.lock().unwrap();
            if names.contains_key(n) {
                return Err(ReefError::new(
                    ErrorCode::NameTaken,
                    format!("an actor named `{n}` already exists"),
                ));
            }
            names.insert(n.clone(), id);
        }
        if let Err(e) = node.hold_args(&args) {
            if let Some(n) = &name {
                self.by_name.lock().unwrap().remove(n);
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
            mailbox: tx,
            state: Mutex::new(ActorState::Starting),
            kill: CancellationToken::new(),
        });
        self.by_id.lock().unwrap().insert(id, actor.clone());
        let parked = self.parked.lock().unwrap().remove(&id).unwrap_or_default();
        for call in parked {
            self.enqueue(node, id, call);
        }
        let node = node.clone();
        let guests = &node.clone().guests;
        guests
            .spawn(async move { run_actor(node, actor, args, resources, pool, options, rx).await });
        Ok(())
    }

    /// Remembers why actor `id` cannot run here; fails the calls parked for it.
    pub fn mark_dead(&self, node: &Arc<Node>, id: u64, cause: ReefError) {
        self.dead.lock().unwrap().insert(id, cause.clone());
        node.report_actor_state(id, Some(&cause));
        let parked = self.parked.lock().unwrap().remove(&id).unwrap_or_default();
        for call in parked {
            node.fail_call(call, dead(&cause));
        }
    }

    pub fn lookup(&self, name: &str) -> ReefResult<u64> {
        self.by_name
            .lock()
            .unwrap()
            .get(name)
            .copied()
            .ok_or_else(|| {
                ReefError::new(
                    ErrorCode::UnknownActor,
                    format!("no actor is named `{name}`"),
                )
            })
    }

    fn get(&self, id: u64) -> ReefResult<Arc<Actor>> {
        self.by_id
            .lock()
            .unwrap()
            .get(&id)
            .cloned()
            .ok_or_else(|| ReefError::new(ErrorCode::UnknownActor, format!("no actor {id}")))
    }

    /// Queues a call for an actor of this node. A call for an actor created
    /// elsewhere that is not here yet waits for its creation (parked).
    pub fn enqueue(&self, node: &Arc<Node>, id: u64, call: Call) {
        let actor = self.by_id.lock().unwrap().get(&id).cloned();
        let Some(a) = actor else {
            let cause = self.dead.lock().unwrap().get(&id).cloned();
            if let Some(cause) = cause {
                return node.fail_call(call, dead(&cause));
            }
            if node.cluster.is_clustered() && creator_index(id) != node.cluster.index() {
                return self.park(node, id, call);
            }
            return node.fail_call(
                call,
                ReefError::new(ErrorCode::UnknownActor, format!("no actor {id}")),
            );
        };
        let class = a.module.info.actor(&a.class).expect("checked at creation");
        if !class.methods.iter().any(|m| m == &call.method) {
            let e = ReefError::new(
                ErrorCode::UnknownFunction,
                format!(
                    "actor class `{}` has no method `{}` (methods: {})",
                    a.class,
                    call.method,
                    class.methods.join(", ")
                ),
            );
            return node.fail_call(call, e);
        }
        if let ActorState::Dead(e) = &*a.state.lock().unwrap() {
            return node.fail_call(call, dead(e));
        }
        if let Err(call) = a.mailbox.send(call) {
            let e = ReefError::new(ErrorCode::ActorDead, "the actor has stopped");
            node.fail_call(call.0, e);
        }
    }

    fn park(&self, node: &Arc<Node>, id: u64, call: Call) {
        let first = {
            let mut parked = self.parked.lock().unwrap();
            let queue = parked.entry(id).or_default();
            queue.push(call);
            queue.len() == 1
        };
        if !first {
            return;
        }
        let node = Arc::downgrade(node);
        tokio::spawn(async move {
            tokio::time::sleep(PARK_TIMEOUT).await;
            let Some(node) = node.upgrade() else { return };
            let calls = node.actors.parked.lock().unwrap().remove(&id);
            for call in calls.unwrap_or_default() {
                let e = ReefError::new(
                    ErrorCode::UnknownActor,
                    format!("actor {id} was not created on this node within {PARK_TIMEOUT:?}"),
                );
                node.fail_call(call, e);
            }
        });
    }

    /// Kills the anonymous actors that node `index` created for its drivers
    /// (that node died, and with it their owners).
    pub fn kill_created_by(&self, index: u32) {
        let ids: Vec<u64> = self
            .by_id
            .lock()
            .unwrap()
            .values()
            .filter(|a| a.owner.is_none() && a.name.is_none() && creator_index(a.id) == index)
            .map(|a| a.id)
            .collect();
        for id in ids {
            let _ = self.kill(id);
        }
    }

    pub fn kill(&self, id: u64) -> ReefResult<()> {
        let actor = self.get(id)?;
        self.kill_with(
            &actor,
            ReefError::new(ErrorCode::ActorDead, "the actor was killed"),
        );
        Ok(())
    }

    fn kill_with(&self, actor: &Actor, cause: ReefError) {
        let mut state = actor.state.lock().unwrap();
        if !matches!(*state, ActorState::Dead(_)) {
            *state = ActorState::Dead(cause);
        }
        drop(state);
        actor.kill.cancel();
        // The name is free at once, not when the actor's task has wound down.
        self.release_name(actor);
    }

    /// Kills the anonymous actors a driver created (named actors outlive it).
    pub fn kill_owned_by(&self, owner: u64) {
        let ids: Vec<u64> = self
            .by_id
            .lock()
            .unwrap()
            .values()
            .filter(|a| a.owner == Some(owner) && a.name.is_none())
            .map(|a| a.id)
            .collect();
        for id in ids {
            let _ = self.kill(id);
        }
    }

    pub fn kill_all(&self) {
        let ids: Vec<u64> = self.by_id.lock().unwrap().keys().copied().collect();
        for id in ids {
            let _ = self.kill(id);
        }
    }

    fn remove(&self, actor: &Actor, cause: ReefError) {
        self.dead.lock().unwrap().insert(actor.id, cause);
        self.by_id.lock().unwrap().remove(&actor.id);
        self.release_name(actor);
    }

    fn release_name(&self, actor: &Actor) {
        if let Some(n) = &actor.name {
            let mut names = self.by_name.lock().unwrap();
            if names.get(n) == Some(&actor.id) {
                names.remove(n);
            }
        }
    }

    pub fn rows(&self) -> Vec<ActorRow> {
        let mut rows: Vec<_> = self
            .by_id
            .lock()
            .unwrap()
            .values()
            .map(|a| ActorRow {
                id: a.id,
                name: a.name.clone().unwrap_or_default(),
                module: a.module.hash.clone(),
                class: a.class.clone(),
                state: match &*a.state.lock().unwrap() {
                    ActorState::Starting => "starting".into(),
                    ActorState::Alive => "alive".into(),
                    ActorState::Dead(e) => format!("dead: {e}"),
                },
            })
            .collect();
        rows.sort_by_key(|r| r.id);
        rows
    }
}

fn group_of(strategy: &Strategy) -> u64 {
    match strategy {
        Strategy::PlacementGroup { group, .. } => *group,
        _ => 0,
    }
}

fn dead(cause: &ReefError) -> ReefError {
    ReefError::new(ErrorCode::ActorDead, format!("the actor is dead: {cause}"))
}

/// The actor's life: construct, then serve calls until killed or trapped.
async fn run_actor(
    node: Arc<Node>,
    actor: Arc<Actor>,
    args: Vec<ArgSpec>,
    resources: Resources,
    pool: Pool,
    options: CallOptions,
    mut mailbox: mpsc::UnboundedReceiver<Call>,
) {
    // Removing the actor's placement group kills it.
    let group_watch = pool.removed.clone().map(|removed| {
        let (node, actor, group) = (node.clone(), actor.clone(), group_of(&actor.strategy));
        tokio::spawn(async move {
            removed.cancelled().await;
            node.actors
                .kill_with(&actor, crate::cluster::groups::group_removed(group));
        })
    });
    let cause = serve(
        &node,
        &actor,
        &args,
        &resources,
        &pool.scheduler,
        &options,
        &mut mailbox,
    )
    .await;
    if let Some(watch) = group_watch {
        watch.abort();
    }
    node.release_args(&args);
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
    node.report_actor_state(actor.id, Some(&cause));
    mailbox.close();
    while let Some(call) = mailbox.recv().await {
        node.fail_call(call, dead(&cause));
    }
    node.actors.remove(&actor, cause);
}

/// Returns why the actor stopped.
async fn serve(
    node: &Arc<Node>,
    actor: &Arc<Actor>,
    args: &[ArgSpec],
    resources: &Resources,
    pool: &Arc<crate::scheduler::Scheduler>,
    options: &CallOptions,
    mailbox: &mut mpsc::UnboundedReceiver<Call>,
) -> ReefError {
    let killed = || ReefError::new(ErrorCode::ActorDead, "the actor was killed");
    let (wit_args, allowed) = match node.resolve_args(args).await {
        Ok(a) => a,
        Err(e) => return e,
    };
    let permit = tokio::select! {
        biased;
        _ = actor.kill.cancelled() => return killed(),
        p = pool.acquire(resources) => p,
    };
    let mut store = exec::new_store(
        node,
        &actor.module,
        node.limits(options),
        actor.kill.clone(),
    );
    store.data_mut().allowed = allowed;
    store.data_mut().permit = Some(permit);
    store.data_mut().resources = resources.clone();
    let instance = match exec::instantiate(&mut store, &actor.module).await {
        Ok(i) => i,
        Err(e) => return e,
    };
    let init = &actor.module.exports.actor_init;
    if let Err(e) = exec::call_init(&mut store, &instance, init, &actor.class, &wit_args).await {
        return e;
    }
    *actor.state.lock().unwrap() = ActorState::Alive;
    node.report_actor_state(actor.id, None);
    loop {
        let call = tokio::select! {
            biased;
            _ = actor.kill.cancelled() => return killed(),
            c = mailbox.recv() => match c { Some(c) => c, None => return killed() },
        };
        let (out_from, err_from) = {
            let ctx = store.data();
            (ctx.stdout.contents().len(), ctx.stderr.contents().len())
        };
        // Each call gets a fresh CPU-time budget.
        store.data_mut().ticks_used = 0;
        let result = match node.resolve_args(&call.args).await {
            Ok((wit_args, allowed)) => {
                store.data_mut().allowed.extend(allowed);
                let export = &actor.module.exports.actor_call;
                exec::call_output(&mut store, &instance, export, &call.method, &wit_args).await
            }
            Err(e) => Err(e),
        };
        let logs = exec::take_logs(store.data_mut(), out_from, err_from);
        node.tasks.put_logs(call.return_id, logs);
        node.release_args(&call.args);
        // A guest-returned error leaves the instance usable; a trap does not.
        let fatal = matches!(&result, Err(e) if !matches!(
            e.code,
            ErrorCode::GuestError | ErrorCode::BadArgument | ErrorCode::UnknownFunction
                | ErrorCode::DependencyFailed | ErrorCode::UnknownObject
        ));
        let cause = result.as_ref().err().cloned();
        node.store.resolve(call.return_id, result);
        node.report_if_foreign(call.return_id);
        if fatal {
            return cause.unwrap();
        }
    }
}
