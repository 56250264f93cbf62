//! Descriptions of work, as the services pass them to each other: a task, an
//! actor's creation, a method call, their arguments and options, and their
//! wire form (`Peer.Forward`, the driver session).

use bytes::Bytes;
use reef_core::{RetryPolicy, TenantId};
use reef_proto as pb;
use tokio::sync::oneshot;

use crate::error::{ErrorCode, ReefError, ReefResult};
use crate::placement::Strategy;
use crate::scheduler::Resources;
use crate::store::ObjectId;

#[derive(Clone, Debug)]
pub enum ArgSpec {
    Inline(Bytes),
    Object(ObjectId),
}

/// The object ids among a call's arguments.
pub fn object_ids(args: &[ArgSpec]) -> impl Iterator<Item = ObjectId> + '_ {
    args.iter().filter_map(|a| match a {
        ArgSpec::Object(id) => Some(*id),
        ArgSpec::Inline(_) => None,
    })
}

/// Per-call options; `None` means the node's default.
#[derive(Clone, Debug, Default)]
pub struct CallOptions {
    pub resources: Option<Resources>,
    pub memory_limit: Option<u64>,
    pub cpu_time_ms: Option<u64>,
    /// Tasks only: retries after a failed attempt (see `reef_core::retry`).
    pub retry: RetryPolicy,
    /// Tasks only: calls one instance may serve (`None`: 1, a fresh
    /// instance per task; 0: no limit). See `guest::warm`.
    pub max_calls: Option<u32>,
}

impl CallOptions {
    /// What a task reserves: what it asked for, else one CPU (as in Ray).
    pub fn task_resources(&self) -> Resources {
        self.resources
            .clone()
            .unwrap_or_else(|| Resources::cpus(1.0))
    }

    /// What an actor reserves for its lifetime: what it asked for, else nothing.
    pub fn actor_resources(&self) -> Resources {
        self.resources.clone().unwrap_or_default()
    }

    /// Calls one instance may serve: 1 (the default) is a fresh instance
    /// per task, 0 no limit.
    pub fn max_calls(&self) -> u32 {
        self.max_calls.unwrap_or(1)
    }
}

/// Limits of one task or actor instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Limits {
    pub memory_bytes: u64,
    pub cpu_time_ms: u64,
}

#[derive(Clone, Debug)]
pub struct TaskSpec {
    pub return_id: ObjectId,
    pub module: String,
    pub function: String,
    pub args: Vec<ArgSpec>,
    pub options: CallOptions,
    /// The driver session that submitted it (its tasks fail when it leaves).
    pub owner: Option<u64>,
    pub strategy: Strategy,
    /// How often it was forwarded from node to node already.
    pub hops: u32,
    /// Whose work it is (its guest's nested work is the same tenant's).
    pub tenant: TenantId,
}

#[cfg(test)]
impl TaskSpec {
    /// Task `f` of module `m` with `args`, the defaults elsewhere (unit tests).
    pub(crate) fn for_test(return_id: ObjectId, args: Vec<ArgSpec>) -> TaskSpec {
        TaskSpec {
            return_id,
            module: "m".into(),
            function: "f".into(),
            args,
            options: Default::default(),
            owner: None,
            strategy: Default::default(),
            hops: 0,
            tenant: Default::default(),
        }
    }
}

/// One attempt of a task: which one it is (1: the first; more after retries).
#[derive(Clone, Debug)]
pub struct Attempt {
    pub spec: TaskSpec,
    pub number: u32,
}

/// An attempt that failed on another node, for its owner to retry or fail.
pub struct FailedAttempt {
    pub attempt: Attempt,
    pub error: ReefError,
    /// Where it ran.
    pub node_id: String,
}

/// How an actor survives failures and how long it lives.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Lifecycle {
    /// Restarts after its node died or its instance trapped; -1: no limit.
    pub max_restarts: i32,
    /// Retries of a call that was in flight when the actor failed; -1: no limit.
    pub max_task_retries: i32,
    /// Outlives the driver session (and node) that created it.
    pub detached: bool,
    /// Restarts so far.
    pub num_restarts: u32,
}

impl Lifecycle {
    /// Whether one more restart is allowed.
    pub fn may_restart(&self) -> bool {
        self.max_restarts < 0 || self.num_restarts < self.max_restarts as u32
    }

    /// Whether a call that failed with the actor `retries` times already
    /// may run again.
    pub fn may_retry(&self, retries: u32) -> bool {
        self.max_task_retries < 0 || retries < self.max_task_retries as u32
    }

    pub fn from_proto(l: Option<pb::ActorLifecycle>) -> Self {
        let l = l.unwrap_or_default();
        Lifecycle {
            max_restarts: l.max_restarts.max(-1),
            max_task_retries: l.max_task_retries.max(-1),
            detached: l.detached,
            num_restarts: l.num_restarts,
        }
    }

    pub fn to_proto(self) -> pb::ActorLifecycle {
        pb::ActorLifecycle {
            max_restarts: self.max_restarts,
            max_task_retries: self.max_task_retries,
            detached: self.detached,
            num_restarts: self.num_restarts,
        }
    }
}

/// An actor to create.
#[derive(Clone)]
pub struct ActorSpec {
    pub module: String,
    pub class: String,
    pub args: Vec<ArgSpec>,
    /// Makes the actor findable by name from any node.
    pub name: Option<String>,
    pub options: CallOptions,
    /// The driver session that created it; anonymous actors die with it.
    pub owner: Option<u64>,
    /// Where it runs (placement groups: which bundle's resources it uses).
    pub strategy: Strategy,
    pub lifecycle: Lifecycle,
    /// Whose actor it is.
    pub tenant: TenantId,
}

/// A method call: its result object already exists (pending) and its
/// object arguments are held.
pub struct Call {
    pub return_id: ObjectId,
    pub method: String,
    pub args: Vec<ArgSpec>,
    /// Times it ran again after the actor failed while running it.
    pub retries: u32,
    /// The tenant calling (the actor must be its own); `None`: any (the
    /// admin).
    pub caller: Option<TenantId>,
}

/// Resolves when a created actor is placed (or failed to be).
pub type Placed = oneshot::Receiver<ReefResult<()>>;

/// Waits for a creation's placement; the actor's id once it is placed.
pub async fn when_placed(created: ReefResult<(u64, Placed)>) -> ReefResult<u64> {
    let (id, placed) = created?;
    match placed.await {
        Ok(result) => result.map(|()| id),
        Err(_) => Err(ReefError::internal("the actor's placement was lost")),
    }
}

/// The first characters of a module hash, for messages.
pub fn short(hash: &str) -> &str {
    &hash[..hash.len().min(12)]
}

pub fn args_from_proto(args: Vec<pb::Arg>) -> ReefResult<Vec<ArgSpec>> {
    args.into_iter()
        .enumerate()
        .map(|(i, a)| match a.kind {
            Some(pb::arg::Kind::Inline(b)) => Ok(ArgSpec::Inline(b)),
            Some(pb::arg::Kind::Object(id)) => Ok(ArgSpec::Object(id)),
            None => Err(ReefError::new(
                ErrorCode::BadArgument,
                format!("argument {i} is empty"),
            )),
        })
        .collect()
}

pub fn args_to_proto(args: &[ArgSpec]) -> Vec<pb::Arg> {
    args.iter()
        .map(|a| pb::Arg {
            kind: Some(match a {
                ArgSpec::Inline(b) => pb::arg::Kind::Inline(b.clone()),
                ArgSpec::Object(id) => pb::arg::Kind::Object(*id),
            }),
        })
        .collect()
}

/// A task's options: one CPU unless it says how many.
pub fn options_from_proto(o: Option<pb::CallOptions>) -> CallOptions {
    call_options(o, 1.0)
}

/// An actor's options: no CPU unless it says how many (asking only for
/// memory or a custom resource reserves no CPU).
pub fn actor_options_from_proto(o: Option<pb::CallOptions>) -> CallOptions {
    call_options(o, 0.0)
}

fn call_options(o: Option<pb::CallOptions>, default_cpus: f64) -> CallOptions {
    let Some(o) = o else {
        return CallOptions::default();
    };
    CallOptions {
        retry: RetryPolicy::from_proto(&o),
        resources: o
            .resources
            .map(|r| Resources::from_request(&r, default_cpus)),
        memory_limit: (o.memory_limit > 0).then_some(o.memory_limit),
        cpu_time_ms: (o.cpu_time_ms > 0).then_some(o.cpu_time_ms),
        max_calls: o.max_calls,
    }
}

pub fn options_to_proto(o: &CallOptions) -> pb::CallOptions {
    let mut options = pb::CallOptions {
        resources: o.resources.as_ref().map(Resources::to_request),
        memory_limit: o.memory_limit.unwrap_or(0),
        cpu_time_ms: o.cpu_time_ms.unwrap_or(0),
        max_calls: o.max_calls,
        ..Default::default()
    };
    o.retry.write_proto(&mut options);
    options
}

/// A task on the wire (`attempt`: which attempt this is, 1 the first).
pub fn task_to_proto(spec: &TaskSpec, attempt: u32) -> pb::SubmitTask {
    pb::SubmitTask {
        attempt,
        return_id: spec.return_id,
        module: spec.module.clone(),
        function: spec.function.clone(),
        args: args_to_proto(&spec.args),
        options: Some(options_to_proto(&spec.options)),
        strategy: Some(spec.strategy.to_proto()),
    }
}

pub fn task_from_proto(
    t: pb::SubmitTask,
    strategy: Strategy,
    hops: u32,
    tenant: TenantId,
) -> ReefResult<TaskSpec> {
    Ok(TaskSpec {
        return_id: t.return_id,
        module: t.module,
        function: t.function,
        args: args_from_proto(t.args)?,
        options: options_from_proto(t.options),
        owner: None,
        strategy,
        hops,
        tenant,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_calls_survives_the_wire_and_defaults_to_one() {
        for max_calls in [None, Some(0), Some(1), Some(5)] {
            let options = CallOptions {
                max_calls,
                ..Default::default()
            };
            let back = options_from_proto(Some(options_to_proto(&options)));
            assert_eq!(back.max_calls, max_calls);
            assert_eq!(back.max_calls(), max_calls.unwrap_or(1));
        }
        assert_eq!(options_from_proto(None).max_calls(), 1);
    }
}
