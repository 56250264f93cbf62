//! Tasks: a call of an exported function in a fresh instance. A submitted
//! task waits for its object arguments (a DAG), then for resources, runs,
//! and seals its result object with the output or the typed error.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio_util::sync::CancellationToken;

use crate::cluster::groups::Pool;
use crate::cluster::placement::{Placement, Strategy};
use crate::error::{ErrorCode, ReefError, ReefResult};
use crate::guest::ctx::Limits;
use crate::guest::exec::{self, GuestLogs};
use crate::guest::types::{Arg, ObjectRef};
use crate::modules::Module;
use crate::node::Node;
use crate::scheduler::{Resources, Scheduler, Ticket};
use crate::store::{Data, ObjectId};

/// How many finished tasks keep their logs.
const KEPT_LOGS: usize = 10_000;

#[derive(Clone, Debug)]
pub enum ArgSpec {
    Inline(Bytes),
    Object(ObjectId),
}

/// Per-call options; `None` means the node's default.
#[derive(Clone, Debug, Default)]
pub struct CallOptions {
    pub resources: Option<Resources>,
    pub memory_limit: Option<u64>,
    pub cpu_time_ms: Option<u64>,
}

/// A task that holds its resources and is ready to run.
struct GuestCall {
    module: Arc<Module>,
    function: String,
    args: Vec<Arg>,
    allowed: HashSet<ObjectId>,
    resources: Resources,
    permit: crate::scheduler::Permit,
    limits: Limits,
    cancel: CancellationToken,
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
    pub strategy: crate::cluster::placement::Strategy,
    /// How often it was forwarded from node to node already.
    pub hops: u32,
}

/// Why a task was stopped before it finished.
#[derive(Clone, Copy, Debug)]
pub enum StopReason {
    Cancelled,
    OwnerDied,
    NodeStopping,
    /// The placement group the task ran in was removed.
    GroupRemoved(u64),
}

impl StopReason {
    fn error(self) -> ReefError {
        match self {
            StopReason::Cancelled => ReefError::new(ErrorCode::Cancelled, "the task was cancelled"),
            StopReason::OwnerDied => ReefError::new(
                ErrorCode::OwnerDied,
                "the driver that submitted the task disconnected",
            ),
            StopReason::NodeStopping => {
                ReefError::new(ErrorCode::NodeStopping, "the node is stopping")
            }
            StopReason::GroupRemoved(group) => crate::cluster::groups::group_removed(group),
        }
    }
}

struct LiveTask {
    module: String,
    function: String,
    state: &'static str,
    owner: Option<u64>,
    cancel: CancellationToken,
    reason: Option<StopReason>,
}

/// A summary row for `host status`.
pub struct TaskRow {
    pub return_id: ObjectId,
    pub module: String,
    pub function: String,
    pub state: &'static str,
}

#[derive(Default)]
pub struct TaskTable {
    live: Mutex<HashMap<ObjectId, LiveTask>>,
    logs: Mutex<(HashMap<ObjectId, GuestLogs>, VecDeque<ObjectId>)>,
}

impl TaskTable {
    fn insert(&self, spec: &TaskSpec) -> CancellationToken {
        let cancel = CancellationToken::new();
        self.live.lock().unwrap().insert(
            spec.return_id,
            LiveTask {
                module: spec.module.clone(),
                function: spec.function.clone(),
                state: "waiting-for-args",
                owner: spec.owner,
                cancel: cancel.clone(),
                reason: None,
            },
        );
        cancel
    }

    fn set_state(&self, id: ObjectId, state: &'static str) {
        if let Some(t) = self.live.lock().unwrap().get_mut(&id) {
            t.state = state;
        }
    }

    fn finish(&self, id: ObjectId, logs: Option<GuestLogs>) -> Option<StopReason> {
        let reason = self.live.lock().unwrap().remove(&id).and_then(|t| t.reason);
        if let Some(logs) = logs {
            self.put_logs(id, logs);
        }
        reason
    }

    pub fn put_logs(&self, id: ObjectId, logs: GuestLogs) {
        let mut guard = self.logs.lock().unwrap();
        let (map, order) = &mut *guard;
        if map.insert(id, logs).is_none() {
            order.push_back(id);
        }
        while order.len() > KEPT_LOGS {
            if let Some(old) = order.pop_front() {
                map.remove(&old);
            }
        }
    }

    pub fn logs(&self, id: ObjectId) -> Option<GuestLogs> {
        self.logs.lock().unwrap().0.get(&id).cloned()
    }

    /// Stops a task; false when no such task is pending or running.
    pub fn stop(&self, id: ObjectId, reason: StopReason) -> bool {
        match self.live.lock().unwrap().get_mut(&id) {
            Some(t) => {
                t.reason.get_or_insert(reason);
                t.cancel.cancel();
                true
            }
            None => false,
        }
    }

    /// Stops every task of a driver (or all tasks when `owner` is None).
    pub fn stop_all(&self, owner: Option<u64>, reason: StopReason) {
        for t in self.live.lock().unwrap().values_mut() {
            if owner.is_none() || t.owner == owner {
                t.reason.get_or_insert(reason);
                t.cancel.cancel();
            }
        }
    }

    /// A task forwarded to another node shows as such until its result comes.
    pub fn note_forwarded(&self, spec: &TaskSpec) {
        self.live.lock().unwrap().insert(
            spec.return_id,
            LiveTask {
                module: spec.module.clone(),
                function: spec.function.clone(),
                state: "forwarded",
                owner: spec.owner,
                cancel: CancellationToken::new(),
                reason: None,
            },
        );
    }

    pub fn forget_forwarded(&self, id: ObjectId) {
        self.live.lock().unwrap().remove(&id);
    }

    pub fn rows(&self) -> Vec<TaskRow> {
        let mut rows: Vec<_> = self
            .live
            .lock()
            .unwrap()
            .iter()
            .map(|(id, t)| TaskRow {
                return_id: *id,
                module: t.module.clone(),
                function: t.function.clone(),
                state: t.state,
            })
            .collect();
        rows.sort_by_key(|r| r.return_id);
        rows
    }

    pub fn len(&self) -> usize {
        self.live.lock().unwrap().len()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Node {
    /// Submits a task. The result object `spec.return_id` is created at once;
    /// a task that cannot run (unknown module or function, infeasible
    /// resources, unknown argument) seals it with the error. Fails only when
    /// the return id is already in use.
    pub fn submit_task(self: &Arc<Self>, spec: TaskSpec) -> ReefResult<()> {
        if let Err(e) = self.store.create_pending(spec.return_id, 1) {
            // A forwarded task whose result a task here already waits for
            // (a placeholder asking the owner, see `hold_object`): adopt it.
            let placeholder = spec.hops > 0
                && !self.owns(spec.return_id)
                && matches!(self.store.is_ready(spec.return_id), Ok(false));
            if !placeholder {
                return Err(e);
            }
            self.store.add_ref(spec.return_id)?;
        }
        let module = match self.check_task(&spec) {
            Ok(m) => Some(m),
            // Registered through another node: fetched by hash below.
            Err(e)
                if e.code == ErrorCode::UnknownModule
                    && self.cluster.is_clustered()
                    && spec.hops == 0 =>
            {
                None
            }
            Err(e) => {
                self.store.resolve(spec.return_id, Err(e));
                self.report_if_foreign(spec.return_id);
                return Ok(());
            }
        };
        if let Err(e) = self.hold_args(&spec.args) {
            self.store.resolve(spec.return_id, Err(e));
            self.report_if_foreign(spec.return_id);
            return Ok(());
        }
        match module {
            Some(module) => self.schedule_task(spec, module),
            None => {
                let node = self.clone();
                tokio::spawn(async move {
                    let fetched = node
                        .fetch_module(&spec.module)
                        .await
                        .and_then(|()| node.check_task(&spec));
                    match fetched {
                        Ok(module) => node.schedule_task(spec, module),
                        Err(e) => {
                            node.store.resolve(spec.return_id, Err(e));
                            node.report_if_foreign(spec.return_id);
                            node.release_args(&spec.args);
                        }
                    }
                });
            }
        }
        Ok(())
    }

    /// Places a checked task whose arguments are held: runs it here or
    /// forwards it.
    fn schedule_task(self: &Arc<Self>, spec: TaskSpec, module: Arc<Module>) {
        let resources = self.task_resources(&spec.options);
        let placed = self
            .place(&resources, &spec.strategy, &spec.args, spec.hops)
            .and_then(|placement| match placement {
                Placement::Local => self.pool_for(&spec.strategy, &resources).map(Ok),
                Placement::Remote(to) => Ok(Err(to)),
            });
        let pool = match placed {
            Ok(Ok(pool)) => pool,
            Ok(Err(to)) => {
                let (id, args) = (spec.return_id, spec.args.clone());
                if let Err(e) = self.forward_task(spec, &to) {
                    self.cluster.forwarded.lock().unwrap().remove(&id);
                    self.tasks.forget_forwarded(id);
                    self.store.resolve(id, Err(e));
                    self.release_args(&args);
                }
                return;
            }
            Err(e) => {
                self.store.resolve(spec.return_id, Err(e));
                self.report_if_foreign(spec.return_id);
                self.release_args(&spec.args);
                return;
            }
        };
        let cancel = self.tasks.insert(&spec);
        // A task whose arguments are all values takes its place in line now.
        let ticket = object_ids(&spec.args)
            .next()
            .is_none()
            .then(|| pool.scheduler.enqueue(&resources));
        let node = self.clone();
        tokio::spawn(async move { node.drive_task(spec, module, pool, ticket, cancel).await });
    }

    fn check_task(&self, spec: &TaskSpec) -> ReefResult<Arc<Module>> {
        if self.is_stopping() {
            return Err(StopReason::NodeStopping.error());
        }
        let module = self.registry.get(&spec.module)?;
        if !module.info.tasks.iter().any(|t| t == &spec.function) {
            return Err(ReefError::new(
                ErrorCode::UnknownFunction,
                format!(
                    "module {} exports no task `{}` (tasks: {})",
                    short(&spec.module),
                    spec.function,
                    module.info.tasks.join(", ")
                ),
            ));
        }
        Ok(module)
    }

    pub fn task_resources(&self, options: &CallOptions) -> Resources {
        options.resources.clone().unwrap_or(Resources {
            cpus: 1.0,
            ..Default::default()
        })
    }

    pub fn check_feasible(&self, request: &Resources) -> ReefResult<()> {
        if self.scheduler.feasible(request) {
            return Ok(());
        }
        Err(ReefError::new(
            ErrorCode::Infeasible,
            format!(
                "no node can ever satisfy {request:?}: this node has {:?} in total",
                self.scheduler.total()
            ),
        ))
    }

    /// Takes a reference on every object argument for as long as the call is pending.
    pub fn hold_args(self: &Arc<Self>, args: &[ArgSpec]) -> ReefResult<()> {
        let ids: Vec<ObjectId> = object_ids(args).collect();
        for (i, id) in ids.iter().enumerate() {
            if let Err(e) = self.hold_object(*id) {
                for held in &ids[..i] {
                    self.store.release(*held);
                }
                return Err(e);
            }
        }
        Ok(())
    }

    pub fn release_args(&self, args: &[ArgSpec]) {
        for id in object_ids(args) {
            self.store.release(id);
        }
    }

    async fn drive_task(
        self: Arc<Self>,
        spec: TaskSpec,
        module: Arc<Module>,
        pool: Pool,
        ticket: Option<Ticket>,
        cancel: CancellationToken,
    ) {
        let id = spec.return_id;
        // Removing the task's placement group stops it.
        let group_watch = pool.removed.clone().map(|removed| {
            let node = self.clone();
            let group = match spec.strategy {
                Strategy::PlacementGroup { group, .. } => group,
                _ => 0,
            };
            tokio::spawn(async move {
                removed.cancelled().await;
                node.tasks.stop(id, StopReason::GroupRemoved(group));
            })
        });
        let (result, logs) = tokio::select! {
            biased; // a stopped task must not start after all
            _ = cancel.cancelled() => (Err(StopReason::Cancelled.error()), None),
            r = self.run_task(&spec, &module, &pool.scheduler, ticket, cancel.clone()) => r,
        };
        if let Some(watch) = group_watch {
            watch.abort();
        }
        let reason = self.tasks.finish(id, logs);
        // A task stopped for a reason reports that reason, whatever the guest did.
        let result = match (result, reason) {
            (Err(_), Some(reason)) => Err(reason.error()),
            (r, _) => r,
        };
        self.store.resolve(id, result);
        self.report_if_foreign(id);
        self.release_args(&spec.args);
    }

    async fn run_task(
        self: &Arc<Self>,
        spec: &TaskSpec,
        module: &Arc<Module>,
        pool: &Arc<Scheduler>,
        ticket: Option<Ticket>,
        cancel: CancellationToken,
    ) -> (ReefResult<Arc<Data>>, Option<GuestLogs>) {
        let (args, allowed) = match self.resolve_args(&spec.args).await {
            Ok(a) => a,
            Err(e) => return (Err(e), None),
        };
        self.tasks
            .set_state(spec.return_id, "waiting-for-resources");
        let resources = self.task_resources(&spec.options);
        let ticket = ticket.unwrap_or_else(|| pool.enqueue(&resources));
        let permit = ticket.granted().await;
        self.tasks.set_state(spec.return_id, "running");
        let call = GuestCall {
            module: module.clone(),
            function: spec.function.clone(),
            args,
            allowed,
            resources,
            permit,
            limits: self.limits(&spec.options),
            cancel,
        };
        let node = self.clone();
        if self.guests.on_guest_thread() {
            return node.execute(call).await;
        }
        // On the RPC thread: take the first slice here when no other guest
        // is doing so. A short task then finishes without any hand-off
        // between threads; one that has to wait or runs past an epoch tick
        // moves, mid-call, to the guest threads.
        let mut call = Box::pin(node.execute(call));
        if let Some(_inline) = self.guests.claim_inline() {
            if let std::task::Poll::Ready(out) = futures::poll!(call.as_mut()) {
                return out;
            }
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.guests.spawn(async move {
            let _ = tx.send(call.await);
        });
        rx.await
            .unwrap_or_else(|_| (Err(ReefError::internal("the guest thread stopped")), None))
    }

    /// Runs a task's guest call in a fresh instance.
    async fn execute(
        self: Arc<Self>,
        call: GuestCall,
    ) -> (ReefResult<Arc<Data>>, Option<GuestLogs>) {
        let GuestCall {
            module,
            function,
            args,
            allowed,
            resources,
            permit,
            limits,
            cancel,
        } = call;
        let mut store = exec::new_store(&self, &module, limits, cancel);
        {
            let ctx = store.data_mut();
            ctx.allowed = allowed;
            ctx.resources = resources;
            ctx.permit = Some(permit);
        }
        let result = match exec::instantiate(&mut store, &module).await {
            Ok(instance) => {
                exec::call_output(
                    &mut store,
                    &instance,
                    &module.exports.run_task,
                    &function,
                    &args,
                )
                .await
            }
            Err(e) => Err(e),
        };
        let logs = exec::take_logs(store.data_mut(), 0, 0);
        store.data_mut().finish();
        (result, Some(logs))
    }

    pub fn limits(&self, options: &CallOptions) -> Limits {
        Limits {
            memory_bytes: options
                .memory_limit
                .unwrap_or(self.config.default_memory_limit)
                .min(crate::engine::MAX_MEMORY),
            cpu_time_ms: options
                .cpu_time_ms
                .unwrap_or(self.config.default_cpu_time_ms),
        }
    }

    /// Waits for every object argument and turns the arguments into WIT
    /// values; an argument whose task failed fails this call.
    pub async fn resolve_args(
        self: &Arc<Self>,
        args: &[ArgSpec],
    ) -> ReefResult<(Vec<Arg>, HashSet<ObjectId>)> {
        let mut out = Vec::with_capacity(args.len());
        let mut allowed = HashSet::new();
        for (i, arg) in args.iter().enumerate() {
            match arg {
                ArgSpec::Inline(b) => out.push(Arg::Inline(b.to_vec())),
                ArgSpec::Object(id) => {
                    let data = self.fetch(*id).await.map_err(|e| {
                        ReefError::new(
                            ErrorCode::DependencyFailed,
                            format!("argument {i} (object {id:#x}) failed: {e}"),
                        )
                    })?;
                    allowed.insert(*id);
                    out.push(Arg::Object(ObjectRef {
                        id: *id,
                        size: data.len(),
                    }));
                }
            }
        }
        Ok((out, allowed))
    }
}

fn object_ids(args: &[ArgSpec]) -> impl Iterator<Item = ObjectId> + '_ {
    args.iter().filter_map(|a| match a {
        ArgSpec::Object(id) => Some(*id),
        ArgSpec::Inline(_) => None,
    })
}

pub fn short(hash: &str) -> &str {
    &hash[..hash.len().min(12)]
}
