//! An actor that lives on this node: its instance, its mailbox and the loop
//! that serves its calls one at a time, in the order they were queued.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::error::{ErrorCode, ReefError};
use crate::guest::{exec, HostServices};
use crate::logs::LogDir;
use crate::metrics::Metrics;
use crate::module::Module;
use crate::objects::ObjectDirectory;
use crate::placement::Strategy;
use crate::scheduler::{Resources, Scheduler};
use crate::spec::{ArgSpec, Call, Limits};

#[derive(Clone, Debug)]
pub enum ActorState {
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
    pub strategy: Strategy,
    /// The actor's one queue once it lives here.
    pub mailbox: mpsc::UnboundedSender<Call>,
    pub state: Mutex<ActorState>,
    pub kill: CancellationToken,
}

impl Actor {
    /// Marks the actor dead with `cause` (a first cause wins) and stops it.
    pub fn kill_with(&self, cause: ReefError) {
        let mut state = self.state.lock().unwrap();
        if !matches!(*state, ActorState::Dead(_)) {
            *state = ActorState::Dead(cause);
        }
        drop(state);
        self.kill.cancel();
    }

    /// The error calls get once the actor is dead.
    pub fn dead_error(&self) -> Option<ReefError> {
        match &*self.state.lock().unwrap() {
            ActorState::Dead(cause) => Some(dead(cause)),
            _ => None,
        }
    }
}

/// The error a call of a dead actor fails with.
pub fn dead(cause: &ReefError) -> ReefError {
    ReefError::new(ErrorCode::ActorDead, format!("the actor is dead: {cause}"))
}

fn killed() -> ReefError {
    ReefError::new(ErrorCode::ActorDead, "the actor was killed")
}

/// What serving an actor needs.
pub struct Serving<'a> {
    pub host: &'a HostServices,
    pub objects: &'a Arc<ObjectDirectory>,
    pub logs: &'a Arc<LogDir>,
    pub args: &'a [ArgSpec],
    pub resources: &'a Resources,
    pub pool: &'a Arc<Scheduler>,
    pub limits: Limits,
    pub metrics: &'a Metrics,
}

/// Constructs the actor, then serves its calls until it is killed or traps;
/// returns why it stopped. `alive` is called once the constructor returned.
pub async fn serve(
    s: Serving<'_>,
    actor: &Arc<Actor>,
    mailbox: &mut mpsc::UnboundedReceiver<Call>,
    alive: impl FnOnce(),
) -> ReefError {
    let (wit_args, allowed) = match s.objects.resolve_args(s.args).await {
        Ok(a) => a,
        Err(e) => return e,
    };
    let permit = tokio::select! {
        biased;
        _ = actor.kill.cancelled() => return killed(),
        p = s.pool.acquire(s.resources) => p,
    };
    // Followers of the actor's log stop when it ends, however it ends.
    let _ended = ActorLogEnd(s.logs, actor.id);
    let mut store = exec::new_store(s.host, &actor.module, s.limits, actor.kill.clone());
    store.data().output.begin(s.logs.actor_init(actor.id));
    store.data_mut().allowed = allowed;
    store.data_mut().permit = Some(permit);
    store.data_mut().resources = s.resources.clone();
    s.metrics.actor_started();
    let instance = match exec::instantiate(&mut store, &actor.module).await {
        Ok(i) => i,
        Err(e) => return e,
    };
    let init = &actor.module.exports.actor_init;
    if let Err(e) = exec::call_init(&mut store, &instance, init, &actor.class, &wit_args).await {
        return e;
    }
    store.data().output.finish();
    *actor.state.lock().unwrap() = ActorState::Alive;
    alive();
    // The metrics of each method called, looked up once per actor.
    let mut series = HashMap::new();
    loop {
        let call = tokio::select! {
            biased;
            _ = actor.kill.cancelled() => return killed(),
            c = mailbox.recv() => match c { Some(c) => c, None => return killed() },
        };
        store
            .data()
            .output
            .begin(s.logs.actor_call(actor.id, call.return_id));
        // Each call gets a fresh CPU-time budget.
        store.data_mut().ticks_used = 0;
        let start = Instant::now();
        let result = match s.objects.resolve_args(&call.args).await {
            Ok((wit_args, allowed)) => {
                store.data_mut().allowed.extend(allowed);
                let export = &actor.module.exports.actor_call;
                exec::call_output(&mut store, &instance, export, &call.method, &wit_args).await
            }
            Err(e) => Err(e),
        };
        let method = match series.get(&call.method) {
            Some(method) => Arc::clone(method),
            None => {
                let method = s
                    .metrics
                    .actor_method(&actor.module.hash, &actor.class, &call.method);
                series.insert(call.method.clone(), method.clone());
                method
            }
        };
        method.called(start.elapsed(), result.as_ref().err().map(|e| e.code));
        store.data().output.finish();
        s.objects.release_args(&call.args);
        // A guest-returned error leaves the instance usable; a trap does not.
        let fatal = matches!(&result, Err(e) if !matches!(
            e.code,
            ErrorCode::GuestError | ErrorCode::BadArgument | ErrorCode::UnknownFunction
                | ErrorCode::DependencyFailed | ErrorCode::UnknownObject
        ));
        let cause = result.as_ref().err().cloned();
        s.objects.seal(call.return_id, result);
        if fatal {
            return cause.unwrap();
        }
    }
}

/// Marks an actor's log ended when dropped.
struct ActorLogEnd<'a>(&'a LogDir, u64);

impl Drop for ActorLogEnd<'_> {
    fn drop(&mut self) {
        self.0.actor_ended(self.1);
    }
}
