//! Actors: one instance of an exported class that lives across calls. Calls
//! run one at a time in submission order; a trap kills the actor (its
//! instance cannot be trusted after it), a returned error fails only its call.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::error::{ErrorCode, ReefError, ReefResult};
use crate::guest::exec;
use crate::modules::Module;
use crate::node::Node;
use crate::scheduler::Resources;
use crate::store::ObjectId;
use crate::tasks::{short, ArgSpec, CallOptions};

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
}

struct Call {
    return_id: ObjectId,
    method: String,
    args: Vec<ArgSpec>,
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
}

impl Actors {
    /// Creates an actor and starts it; returns its id at once (a failing
    /// constructor fails the actor's calls with its error).
    pub fn create(&self, node: &Arc<Node>, spec: ActorSpec) -> ReefResult<u64> {
        let ActorSpec {
            module,
            class,
            args,
            name,
            options,
            owner,
        } = spec;
        let class = class.as_str();
        let module = node.registry.get(&module)?;
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
        let resources = options.resources.clone().unwrap_or_default();
        node.check_feasible(&resources)?;
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
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
        let claimed = node
            .record_actor(id, &module.hash, class, name.as_deref())
            .and_then(|()| node.hold_args(&args));
        if let Err(e) = claimed {
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
            class: class.to_string(),
            owner,
            mailbox: tx,
            state: Mutex::new(ActorState::Starting),
            kill: CancellationToken::new(),
        });
        self.by_id.lock().unwrap().insert(id, actor.clone());
        let node = node.clone();
        let guests = &node.clone().guests;
        guests.spawn(async move { run_actor(node, actor, args, resources, options, rx).await });
        Ok(id)
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

    /// Queues a method call; its result object is created at once and
    /// sealed with the error if the call cannot run.
    pub fn call(
        &self,
        node: &Arc<Node>,
        actor: u64,
        return_id: ObjectId,
        method: String,
        args: Vec<ArgSpec>,
    ) -> ReefResult<()> {
        node.store.create_pending(return_id, 1)?;
        let result = self.get(actor).and_then(|a| {
            let class = a.module.info.actor(&a.class).expect("checked at creation");
            if !class.methods.iter().any(|m| m == &method) {
                return Err(ReefError::new(
                    ErrorCode::UnknownFunction,
                    format!(
                        "actor class `{}` has no method `{method}` (methods: {})",
                        a.class,
                        class.methods.join(", ")
                    ),
                ));
            }
            if let ActorState::Dead(e) = &*a.state.lock().unwrap() {
                return Err(dead(e));
            }
            node.hold_args(&args)?;
            a.mailbox
                .send(Call {
                    return_id,
                    method,
                    args,
                })
                .map_err(|call| {
                    node.release_args(&call.0.args);
                    ReefError::new(ErrorCode::ActorDead, "the actor has stopped")
                })
        });
        if let Err(e) = result {
            node.store.resolve(return_id, Err(e));
        }
        Ok(())
    }

    pub fn kill(&self, node: &Node, id: u64) -> ReefResult<()> {
        let actor = self.get(id)?;
        let mut state = actor.state.lock().unwrap();
        if !matches!(*state, ActorState::Dead(_)) {
            *state = ActorState::Dead(ReefError::new(ErrorCode::ActorDead, "the actor was killed"));
        }
        drop(state);
        actor.kill.cancel();
        // The name is free at once, not when the actor's task has wound down.
        self.release_name(&actor);
        let reason = "the actor was killed".to_string();
        node.record_actor_state(id, reef_gcs::ActorState::Dead { reason });
        Ok(())
    }

    /// Kills the anonymous actors a driver created (named actors outlive it).
    pub fn kill_owned_by(&self, node: &Node, owner: u64) {
        let ids: Vec<u64> = self
            .by_id
            .lock()
            .unwrap()
            .values()
            .filter(|a| a.owner == Some(owner) && a.name.is_none())
            .map(|a| a.id)
            .collect();
        for id in ids {
            let _ = self.kill(node, id);
        }
    }

    pub fn kill_all(&self, node: &Node) {
        let ids: Vec<u64> = self.by_id.lock().unwrap().keys().copied().collect();
        for id in ids {
            let _ = self.kill(node, id);
        }
    }

    fn remove(&self, actor: &Actor) {
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

fn dead(cause: &ReefError) -> ReefError {
    ReefError::new(ErrorCode::ActorDead, format!("the actor is dead: {cause}"))
}

/// The actor's life: construct, then serve calls until killed or trapped.
async fn run_actor(
    node: Arc<Node>,
    actor: Arc<Actor>,
    args: Vec<ArgSpec>,
    resources: Resources,
    options: CallOptions,
    mut mailbox: mpsc::UnboundedReceiver<Call>,
) {
    let cause = serve(&node, &actor, &args, &resources, &options, &mut mailbox).await;
    node.release_args(&args);
    {
        let mut state = actor.state.lock().unwrap();
        if !matches!(*state, ActorState::Dead(_)) {
            *state = ActorState::Dead(cause.clone());
        }
    }
    tracing::info!(actor = actor.id, "actor stopped: {cause}");
    node.record_actor_state(
        actor.id,
        reef_gcs::ActorState::Dead {
            reason: cause.to_string(),
        },
    );
    mailbox.close();
    while let Some(call) = mailbox.recv().await {
        node.store.resolve(call.return_id, Err(dead(&cause)));
        node.release_args(&call.args);
    }
    node.actors.remove(&actor);
}

/// Returns why the actor stopped.
async fn serve(
    node: &Arc<Node>,
    actor: &Arc<Actor>,
    args: &[ArgSpec],
    resources: &Resources,
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
        p = node.scheduler.acquire(resources) => p,
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
    node.record_actor_state(actor.id, reef_gcs::ActorState::Alive);
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
        if fatal {
            return cause.unwrap();
        }
    }
}
