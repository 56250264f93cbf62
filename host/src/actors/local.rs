//! An actor that lives on this node: its instance, its mailbox and the loop
//! that serves its calls one at a time, in the order they were queued.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use reef_core::TenantId;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::error::{ErrorCode, ReefError};
use crate::guest::{exec, HostServices};
use crate::logs::LogDir;
use crate::metrics::Metrics;
use crate::module::Module;
use crate::objects::ObjectDirectory;
use crate::placement::Strategy;
use crate::scheduler::{InstanceReservation, Resources, Scheduler, Share};
use crate::spec::{ArgSpec, Call, Lifecycle, Limits};

#[derive(Clone, Debug)]
pub enum ActorState {
    Starting,
    Alive,
    /// Its instance failed; a new one is being made (calls wait).
    Restarting(ReefError),
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
    /// Whose actor it is (its guest works for this tenant).
    pub tenant: TenantId,
    /// Restarts and retries allowed, lifetime; `num_restarts` as created.
    pub lifecycle: Lifecycle,
    /// Restarts so far (here and on the nodes it lived on before).
    pub restarts: AtomicU32,
    /// The actor's one queue once it lives here.
    pub mailbox: mpsc::UnboundedSender<Call>,
    pub state: Mutex<ActorState>,
    pub kill: CancellationToken,
    /// Its place under the tenant's `--max-instances`, taken when it was
    /// created here and given back once its instance is granted (it counts
    /// as an instance from then on).
    pub reserved: Mutex<Option<InstanceReservation>>,
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

    /// Whether one more restart is allowed.
    pub fn may_restart(&self) -> bool {
        Lifecycle {
            num_restarts: self.restarts.load(Ordering::Relaxed),
            ..self.lifecycle
        }
        .may_restart()
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
    /// The actor's tenant and weight: its creation waits in that tenant's
    /// line of the pool.
    pub share: Share,
    pub limits: Limits,
    pub metrics: &'a Metrics,
}

/// Why an instance of the actor stopped serving.
pub struct Stopped {
    pub cause: ReefError,
    /// The constructor failed (the actor is not restarted then).
    pub in_init: bool,
    /// The call it failed in, unsealed and with its arguments still held:
    /// retried after a restart, or failed.
    pub call: Option<Call>,
}

impl Stopped {
    fn before_calls(cause: ReefError) -> Self {
        Stopped {
            cause,
            in_init: true,
            call: None,
        }
    }
}

/// Constructs an instance of the actor, then serves its calls (first those
/// in `retry`, then the mailbox's) until it is killed or the instance
/// fails; returns why it stopped. `alive` is called once the constructor
/// returned.
pub async fn serve(
    s: &Serving<'_>,
    actor: &Arc<Actor>,
    retry: &mut VecDeque<Call>,
    mailbox: &mut mpsc::UnboundedReceiver<Call>,
    alive: impl Fn(),
) -> Stopped {
    let (wit_args, allowed) = match s.objects.resolve_args(s.args).await {
        Ok(a) => a,
        Err(e) => return Stopped::before_calls(e),
    };
    let permit = tokio::select! {
        biased;
        _ = actor.kill.cancelled() => return Stopped::before_calls(killed()),
        p = s.pool.acquire(&s.share, s.resources) => p,
    };
    drop(actor.reserved.lock().unwrap().take());
    let host = s.host.for_tenant(&actor.tenant);
    let mut store = exec::new_store(&host, &actor.module, s.limits, actor.kill.clone());
    store
        .data()
        .output
        .begin(s.logs.actor_init(actor.id, &actor.tenant));
    store.data_mut().allowed = allowed;
    store.data_mut().permit = Some(permit);
    store.data_mut().resources = s.resources.clone();
    s.metrics.actor_started();
    let instance = match exec::instantiate(&mut store, &actor.module).await {
        Ok(i) => i,
        Err(e) => return Stopped::before_calls(e),
    };
    let init = &actor.module.exports.actor_init;
    if let Err(e) = exec::call_init(&mut store, &instance, init, &actor.class, &wit_args).await {
        return Stopped::before_calls(e);
    }
    store.data().output.finish();
    *actor.state.lock().unwrap() = ActorState::Alive;
    alive();
    // The metrics of each method called, looked up once per actor.
    let mut series = HashMap::new();
    let stopped = |cause| Stopped {
        cause,
        in_init: false,
        call: None,
    };
    loop {
        let call = match retry.pop_front() {
            Some(c) => c,
            None => tokio::select! {
                biased;
                _ = actor.kill.cancelled() => return stopped(killed()),
                c = mailbox.recv() => match c { Some(c) => c, None => return stopped(killed()) },
            },
        };
        store
            .data()
            .output
            .begin(s.logs.actor_call(actor.id, &actor.tenant, call.return_id));
        // Each call gets a fresh CPU-time budget.
        store.data_mut().ticks_used = 0;
        let start = Instant::now();
        // An argument that cannot be had fails the call, not the instance.
        let (result, ran) = match s.objects.resolve_args(&call.args).await {
            Ok((wit_args, allowed)) => {
                store.data_mut().allowed.extend(allowed);
                let export = &actor.module.exports.actor_call;
                let out =
                    exec::call_output(&mut store, &instance, export, &call.method, &wit_args).await;
                (out, true)
            }
            Err(e) => (Err(e), false),
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
        // A guest-returned error leaves the instance usable; a trap does not.
        match result {
            Err(e) if ran && is_fatal(&e) => {
                return Stopped {
                    cause: e,
                    in_init: false,
                    call: Some(call),
                }
            }
            result => {
                s.objects.release_args(&call.args);
                s.objects.seal(call.return_id, result);
            }
        }
    }
}

/// Whether a call's failure leaves the instance unusable: anything but an
/// error the guest returned or a bad argument the host caught first.
pub fn is_fatal(e: &ReefError) -> bool {
    !matches!(
        e.code,
        ErrorCode::GuestError
            | ErrorCode::BadArgument
            | ErrorCode::UnknownFunction
            | ErrorCode::DependencyFailed
            | ErrorCode::UnknownObject
    )
}

/// Marks an actor's log ended when dropped.
pub struct ActorLogEnd<'a>(pub &'a LogDir, pub u64);

impl Drop for ActorLogEnd<'_> {
    fn drop(&mut self) {
        self.0.actor_ended(self.1);
    }
}
