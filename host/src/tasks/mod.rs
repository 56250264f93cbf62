//! Tasks: a call of an exported function in a fresh instance (or, opted
//! into with `max_calls`, a kept one: see `guest::warm`). A submitted
//! task waits for its object arguments (a DAG), then for resources, runs,
//! and seals its result object with the output or the typed error.
//!
//! The steps of one task here: [`Tasks::submit`] creates the pending result
//! and checks the call → `schedule` asks `placement` where it runs (here,
//! or forwarded to another node) → `drive` waits for the arguments and a
//! permit, runs the guest and seals the result.
//!
//! A failed attempt goes back to the task's owner (the node it was
//! submitted to), which runs it again when its retry policy allows (see
//! `retry`): placed anew, its arguments fetched again, its result object the
//! same. The owner seals the result once, with the value or the last error.

pub mod history;
pub mod inline;
mod overflow;
mod retry;
mod table;

use crate::fastmap::FastSet;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use reef_core::TenantId;
use reef_proto as pb;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::cluster::groups::{Bundles, Pool};
use crate::cluster::Membership;
use crate::config::NodeConfig;
use crate::error::{ErrorCode, ReefError, ReefResult};
use crate::guest::exec;
use crate::guest::spent::Spent;
use crate::guest::types::Arg;
use crate::guest::warm::{Warm, WarmKey, WarmPool};
use crate::guest::HostServices;
use crate::logs::{CallLog, LogDir};
use crate::metrics::{Metrics, TaskFn};
use crate::module::Module;
use crate::modules::Registry;
use crate::objects::{Forwarded, ObjectDirectory, Rebuild};
use crate::placement::{self, Decision, Strategy};
use crate::quotas::{Counted, Quotas};
use crate::runtime::GuestRuntime;
use crate::scheduler::{Permit, Resources, Scheduler, Ticket};
use crate::spec::{object_ids, short, task_from_proto, task_to_proto, Limits, TaskSpec};
use crate::spec::{Attempt, FailedAttempt};
use crate::store::{Data, ObjectId};

pub use table::{LiveTask, StopReason, TaskRow, TaskTable};

/// A task that holds its resources and is ready to run.
struct GuestCall {
    module: Arc<Module>,
    function: String,
    args: Vec<Arg>,
    allowed: FastSet<ObjectId>,
    resources: Resources,
    permit: Permit,
    limits: Limits,
    cancel: CancellationToken,
    /// Where its output goes.
    log: CallLog,
    /// Calls one instance may serve (1: a fresh one for this task).
    max_calls: u32,
    /// Its function's metrics (a fresh instance is counted).
    series: Arc<TaskFn>,
}

/// How long a retry or rebuild that no alive node can run waits for one
/// to join (see `Tasks::schedule`).
const NODE_WAIT: Duration = Duration::from_secs(30);
/// How often a task whose result was freed before it was sealed is looked
/// for, to give back its pending-tasks charge once it is done.
const RELEASED_TASK_POLL: Duration = Duration::from_millis(50);

/// The node's task service.
pub struct Tasks {
    config: Arc<NodeConfig>,
    table: TaskTable,
    /// Attempts that ran here to the end (bounded).
    history: history::History,
    logs: Arc<LogDir>,
    objects: Arc<ObjectDirectory>,
    registry: Arc<Registry>,
    cluster: Arc<Membership>,
    bundles: Arc<Bundles>,
    scheduler: Arc<Scheduler>,
    guests: Arc<GuestRuntime>,
    /// What the guests of this service's tasks may reach (set once at start).
    host: OnceLock<HostServices>,
    /// The service itself, for rebuilds asked through `Rebuild` (set at start).
    me: OnceLock<std::sync::Weak<Tasks>>,
    stopping: CancellationToken,
    metrics: Arc<Metrics>,
    quotas: Arc<Quotas>,
    /// Instances kept for tasks with `max_calls` other than 1.
    warm: Arc<WarmPool>,
    /// A flood of short tasks from a tenant alone on the node, handed to
    /// the guest threads.
    overflow: Arc<overflow::Overflow>,
}

/// What the task service is built from (see `node.rs`).
pub struct TaskDeps {
    pub config: Arc<NodeConfig>,
    pub logs: Arc<LogDir>,
    pub objects: Arc<ObjectDirectory>,
    pub registry: Arc<Registry>,
    pub cluster: Arc<Membership>,
    pub bundles: Arc<Bundles>,
    pub scheduler: Arc<Scheduler>,
    pub guests: Arc<GuestRuntime>,
    pub stopping: CancellationToken,
    pub metrics: Arc<Metrics>,
    pub quotas: Arc<Quotas>,
}

impl Tasks {
    pub fn new(deps: TaskDeps) -> Self {
        let overflow = overflow::Overflow::new(deps.guests.clone());
        Tasks {
            overflow,
            table: TaskTable::default(),
            history: history::History::default(),
            logs: deps.logs,
            objects: deps.objects,
            registry: deps.registry,
            cluster: deps.cluster,
            bundles: deps.bundles,
            scheduler: deps.scheduler,
            guests: deps.guests,
            host: OnceLock::new(),
            me: OnceLock::new(),
            stopping: deps.stopping,
            metrics: deps.metrics,
            quotas: deps.quotas,
            warm: WarmPool::new(deps.config.warm_instances),
            config: deps.config,
        }
    }

    /// Marks a driver session reading a large batch of ops until the guard
    /// is dropped (see `overflow::Overflow::reading`).
    pub fn reading_batch(&self) -> overflow::Reading {
        self.overflow.reading()
    }

    /// The idle instances kept for reuse.
    pub fn warm(&self) -> &Arc<WarmPool> {
        &self.warm
    }

    /// Gives the service the host services its guests get (once, at start).
    pub fn set_host(self: &Arc<Self>, host: HostServices) {
        let _ = self.host.set(host);
        let _ = self.me.set(Arc::downgrade(self));
    }

    fn host(&self) -> ReefResult<&HostServices> {
        self.host
            .get()
            .ok_or_else(|| ReefError::internal("the task service is not started"))
    }

    pub fn table(&self) -> &TaskTable {
        &self.table
    }

    /// Attempts that ran here to the end, oldest first.
    pub fn history(&self) -> &history::History {
        &self.history
    }

    /// Submits a task. The result object `spec.return_id` is created at once;
    /// a task that cannot run (unknown module or function, infeasible
    /// resources, unknown argument) seals it with the error. Fails only when
    /// the return id is already in use.
    /// Its owner (this node) keeps its lineage from now on (see `lineage`):
    /// whichever attempt's report comes, the result can be rebuilt.
    ///
    /// The tenant's quotas and the node's call limits are checked here, at
    /// the edge (drivers' and guests' submissions): a task over them fails
    /// at once (`QUOTA_EXCEEDED`, `INFEASIBLE`).
    pub fn submit(self: &Arc<Self>, mut spec: TaskSpec) -> ReefResult<()> {
        let charge = match self.admit(&mut spec) {
            Ok(charge) => charge,
            Err(e) => {
                self.objects.store().create_pending(spec.return_id, 1)?;
                self.count(&spec, None, Some(&e));
                self.objects.seal_failure(spec.return_id, e);
                return Ok(());
            }
        };
        let id = spec.return_id;
        let lineage = self.objects.lineage().enabled().then(|| spec.clone());
        self.submit_attempt(Attempt { spec, number: 1 })?;
        if let Some(charge) = charge {
            // Counted as pending until its result is sealed; a result freed
            // before that (its driver released it) counts until its task is
            // done, here or on the node it was forwarded to (which reports
            // back when it ends), so submitting and dropping cannot queue
            // unbounded work.
            let this = self.clone();
            tokio::spawn(async move {
                let _ = this.objects.store().wait_sealed(id).await;
                let running =
                    |this: &Tasks| this.table.contains(id) || this.objects.is_forwarded(id);
                while running(&this) && !this.stopping.is_cancelled() {
                    tokio::time::sleep(RELEASED_TASK_POLL).await;
                }
                drop(charge);
            });
        }
        if let Some(spec) = lineage {
            self.objects.keep_lineage(spec);
        }
        Ok(())
    }

    fn submit_attempt(self: &Arc<Self>, attempt: Attempt) -> ReefResult<()> {
        let spec = &attempt.spec;
        let store = self.objects.store();
        if let Err(e) = store.create_pending(spec.return_id, 1) {
            // A forwarded attempt whose result has an entry here already: a
            // placeholder a task here waits on (see `ObjectDirectory::hold`),
            // a copy pulled earlier (the owner may not know of it yet when
            // it rebuilds the object), a stale error. It adopts the entry.
            if spec.hops == 0 || self.objects.owns(spec.return_id) {
                return Err(e);
            }
            match store.adopt(spec.return_id) {
                // Freed meanwhile.
                None => store.create_pending(spec.return_id, 1)?,
                Some(true) => {
                    self.objects.note_attempt(spec.return_id, attempt.number);
                    self.objects.report_if_foreign(spec.return_id);
                    return Ok(());
                }
                Some(false) => {}
            }
        }
        // Its result is its tenant's: spilled within the tenant's quota.
        store.tag_tenant(spec.return_id, &spec.tenant);
        if !self.objects.owns(spec.return_id) {
            // Its report names the attempt (see `ObjectDirectory::on_objects_ready`).
            self.objects.note_attempt(spec.return_id, attempt.number);
        }
        // Where a task enters the cluster (not forwarded), its tenant must
        // be one that may run the module; when this node cannot tell at
        // once, the check is made below, with the fetch.
        let vetted = spec.hops > 0
            || self
                .registry
                .owners()
                .may_run_now(&spec.module, &spec.tenant)
                == Some(true);
        let module = match self.check(spec) {
            Ok(m) if vetted => Some(m),
            Ok(_) => None,
            // Registered through another node: fetched by hash below.
            Err(e)
                if e.code == ErrorCode::UnknownModule
                    && self.cluster.is_clustered()
                    && spec.hops == 0 =>
            {
                None
            }
            Err(e) => {
                let module = self.registry.get(&spec.module).ok();
                self.count(spec, module.as_deref(), Some(&e));
                self.objects.seal_failure(spec.return_id, e);
                return Ok(());
            }
        };
        if let Err(e) = self.objects.hold_args(&spec.args) {
            self.count(spec, module.as_deref(), Some(&e));
            self.objects.seal_failure(spec.return_id, e);
            return Ok(());
        }
        match module {
            Some(module) => {
                let series = self.count(spec, Some(&module), None);
                self.schedule(attempt, module, series, None, None)
            }
            None => {
                let this = self.clone();
                tokio::spawn(async move {
                    let spec = &attempt.spec;
                    let fetched = match this.vet_module(spec).await {
                        Ok(()) => this.check(spec),
                        Err(e) => Err(e),
                    };
                    let module = fetched.as_ref().ok().map(|m| &**m);
                    let series = this.count(spec, module, fetched.as_ref().err());
                    match fetched {
                        Ok(module) => this.schedule(attempt, module, series, None, None),
                        Err(e) => this.objects.fail(spec.return_id, e, &spec.args),
                    }
                });
            }
        }
        Ok(())
    }

    /// Checks a new task against the node's call limits and its tenant's
    /// quotas; its share of the pending-tasks quota when it has one.
    fn admit(&self, spec: &mut TaskSpec) -> ReefResult<Option<crate::quotas::Charge>> {
        self.config.check_call(&spec.options, "the task")?;
        self.bundles.check_tenant(&spec.strategy, &spec.tenant)?;
        let cpus = spec.options.task_resources().cpus;
        self.quotas.check_call(
            &spec.tenant,
            "the task",
            cpus,
            &mut spec.options,
            &self.config.call_defaults(),
        )?;
        self.quotas.charge(&spec.tenant, Counted::PendingTasks, 1)
    }

    /// Counts a task submitted here by a driver or guest (forwarded ones
    /// were counted where they were submitted) and, when it cannot run, its
    /// failure. Returns the task's series, looked up once per task.
    fn count(
        &self,
        spec: &TaskSpec,
        module: Option<&Module>,
        rejected: Option<&ReefError>,
    ) -> Arc<TaskFn> {
        let series = self.metrics.task(module, &spec.module, &spec.function);
        if spec.hops == 0 {
            series.submitted();
        }
        if let Some(e) = rejected {
            series.done(Some(e.code));
        }
        series
    }

    /// Checks that the task's tenant may run its module (see
    /// `module_owners`) and fetches the module when it was registered
    /// through another node. A module the tenant may not run fails as an
    /// unknown hash does, whether or not it exists.
    async fn vet_module(&self, spec: &TaskSpec) -> ReefResult<()> {
        if spec.hops == 0 {
            self.registry
                .owners()
                .check(&spec.module, &spec.tenant)
                .await?;
        }
        self.registry
            .fetch(self.host()?, &spec.module)
            .await
            .map(|_| ())
    }

    /// Work another node forwarded here.
    pub fn accept_forwarded(
        self: &Arc<Self>,
        task: pb::SubmitTask,
        strategy: Strategy,
        hops: u32,
        tenant: TenantId,
    ) {
        let number = task.attempt.max(1);
        let attempt = match task_from_proto(task, strategy, hops, tenant) {
            Ok(spec) => Attempt { spec, number },
            Err(e) => return tracing::warn!("bad forwarded task: {e}"),
        };
        if self.registry.get(&attempt.spec.module).is_ok() {
            return self.submit_forwarded(attempt);
        }
        // First use of a module here: fetch it from the control plane by hash.
        let this = self.clone();
        tokio::spawn(async move {
            let id = attempt.spec.return_id;
            if let Err(e) = this.vet_module(&attempt.spec).await {
                this.objects.store().create_pending(id, 1).ok();
                this.objects.note_attempt(id, attempt.number);
                this.objects.seal_failure(id, e);
                return;
            }
            this.submit_forwarded(attempt);
        });
    }

    fn submit_forwarded(self: &Arc<Self>, attempt: Attempt) {
        let id = attempt.spec.return_id;
        if let Err(e) = self.submit_attempt(attempt) {
            tracing::warn!("forwarded task {id:#x}: {e}");
        }
    }

    /// Attempts that failed on other nodes (they died, or reported the
    /// failure): each is retried or its result failed (see `settle_failure`).
    pub fn on_failed_elsewhere(self: &Arc<Self>, failed: Vec<FailedAttempt>) {
        for f in failed {
            self.settle_failure(f.attempt, f.error, Some(&f.node_id));
        }
    }

    /// An attempt failed with `error` (on `node_id`, when not here). The
    /// owner runs the task again when its policy allows and this node is not
    /// stopping (away from a node that died or is stopping), else seals the
    /// result with the error, naming the attempt count once retries were
    /// possible; another node tells the owner. The arguments stay held
    /// until the result is sealed.
    fn settle_failure(self: &Arc<Self>, attempt: Attempt, error: ReefError, node_id: Option<&str>) {
        let id = attempt.spec.return_id;
        if !self.objects.owns(id) {
            self.objects.seal_failure(id, error);
            return self.objects.release_args(&attempt.spec.args);
        }
        if !self.objects.store().contains(id) {
            // Nobody holds the result any more: nothing to retry for.
            return self.objects.release_args(&attempt.spec.args);
        }
        let policy = &attempt.spec.options.retry;
        if !policy.retries(attempt.number, error.code) || self.stopping.is_cancelled() {
            let error = retry::final_error(error, &attempt);
            tracing::debug!(task = %format_args!("{id:#x}"), attempt = attempt.number, "task failed: {error}");
            return self.objects.fail(id, error, &attempt.spec.args);
        }
        tracing::info!(
            task = %format_args!("{id:#x}"),
            function = %attempt.spec.function,
            attempt = attempt.number,
            cause = %error,
            "retrying task"
        );
        let avoid = node_id.filter(|_| retry::avoids_node(error.code));
        let next = Attempt {
            number: attempt.number + 1,
            spec: attempt.spec,
        };
        match self.check(&next.spec) {
            Ok(module) => {
                let series =
                    self.metrics
                        .task(Some(&module), &next.spec.module, &next.spec.function);
                self.schedule(
                    next,
                    module,
                    series,
                    avoid,
                    Some(Instant::now() + NODE_WAIT),
                )
            }
            Err(e) => {
                let e = retry::unplaced(e, &next, None);
                self.objects.fail(id, e, &next.spec.args)
            }
        }
    }

    /// Where a task runs (see `placement::place`); never on `avoid` (a node
    /// an earlier attempt failed on as it stopped or died).
    fn place(
        &self,
        spec: &TaskSpec,
        resources: &Resources,
        avoid: Option<&str>,
        mut view: Arc<pb::ClusterView>,
    ) -> ReefResult<Decision> {
        let group = match &spec.strategy {
            Strategy::PlacementGroup { group, bundle } => {
                Some(self.bundles.facts(*group, *bundle, resources))
            }
            _ => None,
        };
        // Outside a cluster only the node's total (and a group's facts)
        // decide: its load and where the arguments are are read only where
        // work may go elsewhere (each takes a lock other threads contend
        // for, on every placement).
        let clustered = self.cluster.is_clustered();
        let (available, queued, args) = if clustered {
            (
                self.scheduler.available(),
                // Tasks in the overflow queue wait for CPUs too, without
                // a place in the CPU line yet.
                self.scheduler.queued() + self.overflow.waiting(),
                self.objects.argument_bytes(&spec.args),
            )
        } else {
            Default::default()
        };
        let local = placement::Local {
            node_id: self.cluster.node_id(),
            total: self.scheduler.total().clone(),
            available,
            queued,
            clustered,
            group,
        };
        let request = placement::Request {
            resources,
            strategy: &spec.strategy,
            hops: spec.hops,
            spread: self.cluster.next_spread(),
        };
        if let Some(avoid) = avoid {
            for n in Arc::make_mut(&mut view).nodes.iter_mut() {
                if n.node_id == avoid && n.state == pb::NodeState::Alive as i32 {
                    n.state = pb::NodeState::Draining as i32;
                }
            }
        }
        placement::place(&request, &local, &view, &args)
    }

    /// Places a checked task whose arguments are held: runs it here or
    /// forwards it.
    ///
    /// A retry or a rebuild (`wait_for_nodes` set) that no alive node can
    /// run waits until then for the cluster to change (a killed node's
    /// replacement joining) instead of failing INFEASIBLE at once: a node
    /// death must cost time, not the result. A first submission waits the
    /// same way when a node that could run it has died (workers being
    /// replaced), and fails at once when none ever could.
    fn schedule(
        self: &Arc<Self>,
        attempt: Attempt,
        module: Arc<Module>,
        series: Arc<TaskFn>,
        avoid: Option<&str>,
        wait_for_nodes: Option<Instant>,
    ) {
        let spec = &attempt.spec;
        let resources = spec.options.task_resources();
        // The view placement decides on (read once: a change while placing
        // is then one to wait for, not one missed).
        let seen = self.cluster.view();
        let placed = self
            .place(spec, &resources, avoid, seen.clone())
            .and_then(|decision| match decision {
                Decision::Local => self.bundles.pool_for(&spec.strategy, &resources).map(Ok),
                Decision::Remote(to) => Ok(Err(*to)),
            });
        let pool = match placed {
            Ok(Ok(pool)) => pool,
            Ok(Err(to)) => return self.forward(attempt, &to),
            Err(e)
                if e.code == ErrorCode::Infeasible
                    && !self.stopping.is_cancelled()
                    && match wait_for_nodes {
                        Some(until) => Instant::now() < until,
                        // A first attempt waits only where a node able to run
                        // it has died: its replacement may be on the way (an
                        // impossible request still fails at once).
                        None => {
                            self.cluster.is_clustered()
                                && crate::placement::a_dead_node_could_run(
                                    &resources,
                                    &spec.strategy,
                                    &seen,
                                )
                        }
                    } =>
            {
                let avoid = avoid.map(str::to_string);
                let until = wait_for_nodes.unwrap_or_else(|| Instant::now() + NODE_WAIT);
                tracing::debug!(task = %format_args!("{:#x}", spec.return_id), "waiting for a node that can run it: {e}");
                let this = self.clone();
                tokio::spawn(async move {
                    let changed = |view: &Arc<pb::ClusterView>| !Arc::ptr_eq(view, &seen);
                    tokio::select! {
                        _ = this.cluster.view_until(until, changed) => {}
                        _ = this.stopping.cancelled() => {}
                    }
                    this.schedule(attempt, module, series, avoid.as_deref(), Some(until));
                });
                return;
            }
            Err(e) => {
                series.done(Some(e.code));
                let waited = (e.code == ErrorCode::Infeasible
                    && wait_for_nodes.is_some()
                    && !self.stopping.is_cancelled())
                .then_some(NODE_WAIT);
                let e = if attempt.number > 1 {
                    retry::unplaced(e, &attempt, waited)
                } else {
                    retry::never_placed(e, waited)
                };
                return self.objects.fail(spec.return_id, e, &spec.args);
            }
        };
        let task = self.table.insert(&attempt, series.clone());
        // A function whose calls run long waits for its turn on the guest
        // threads: a thread that finishes one call then starts the next one
        // waiting there, without a round of wake-ups through the RPC thread
        // (64 sums of 16 MiB: ~15 ms less). Short ones stay here, where their
        // first slice may run inline (see `inline`), unless they flood the
        // node (see `overflow`).
        let values_only = object_ids(&spec.args).next().is_none();
        let short = module.run_times.starts_inline(&spec.function);
        // Only a driver's task (or one forwarded here) that asks for CPUs
        // alone, outside placement groups, may queue: a puller drives one
        // task at a time, so a guest's child task queued behind it or a
        // resource held elsewhere would hold it for as long as that takes.
        let may_queue = short
            && resources.memory == 0
            && resources.custom.is_empty()
            && spec.strategy.group().is_none()
            && !self.guests.on_guest_thread();
        let span = tracing::debug_span!(
            "task",
            id = %format_args!("{:#x}", spec.return_id),
            attempt = attempt.number
        );
        if may_queue && !values_only {
            // A task with object arguments waits for them here, and only
            // then may queue: a puller holding a task that waits for an
            // argument (one rebuilt by lineage, queued behind it) would wait
            // forever. A DAG's dependents are such tasks: driven on the RPC
            // thread alone they kept it at ~95 % while the guest threads idled.
            let this = self.clone();
            tokio::spawn(async move {
                let resolved = tokio::select! {
                    biased;
                    _ = task.cancel().cancelled() => None,
                    resolved = this.objects.resolve_args(&attempt.spec.args) => Some(resolved),
                };
                // A task cancelled meanwhile ends at once, not in the queue.
                let admission = this
                    .overflow
                    .admit(&attempt.spec.tenant, resolved.is_some());
                let prepared = Prepared {
                    ticket: None,
                    resolved,
                };
                let drive = Arc::clone(&this)
                    .drive(attempt, module, series, pool, prepared, task)
                    .instrument(span);
                match admission {
                    // Already in a tokio task of its own here: no second spawn.
                    overflow::Admission::Spawn => this.overflow.clone().run_spawned(drive).await,
                    overflow::Admission::Queue => this.overflow.queue(drive),
                }
            });
            return;
        }
        let admission = short.then(|| self.overflow.admit(&spec.tenant, may_queue && values_only));
        // A task whose arguments are all values takes its place in line now
        // (a queued one when it starts).
        let ticket = (values_only && admission != Some(overflow::Admission::Queue)).then(|| {
            pool.scheduler
                .enqueue(&self.quotas.share(&spec.tenant), &resources)
        });
        let this = self.clone();
        // Not wrapped in an `async move` block: its captures would be kept
        // beside `drive`'s own copies in every queued task's future.
        let prepared = Prepared {
            ticket,
            resolved: None,
        };
        let drive = this
            .drive(attempt, module, series, pool, prepared, task)
            .instrument(span);
        match admission {
            Some(overflow::Admission::Spawn) => self.overflow.spawn(drive),
            Some(overflow::Admission::Queue) => self.overflow.queue(drive),
            None => self.guests.spawn(drive),
        }
    }

    /// Sends a task (its result pending here, its arguments held) to another node.
    fn forward(&self, attempt: Attempt, to: &pb::NodeView) {
        let spec = &attempt.spec;
        if !self.objects.owns(spec.return_id) {
            self.objects.forget_attempt(spec.return_id);
        }
        let link = match self.cluster.peer(&to.node_id) {
            Ok(link) => link,
            Err(e) => return self.objects.fail(spec.return_id, e, &spec.args),
        };
        let work = pb::ForwardedWork {
            work: Some(pb::forwarded_work::Work::Task(task_to_proto(
                spec,
                attempt.number,
            ))),
            strategy: Some(spec.strategy.to_proto()),
            hops: spec.hops + 1,
            tenant: spec.tenant.to_wire(),
        };
        tracing::trace!(
            task = %format_args!("{:#x}", spec.return_id),
            attempt = attempt.number,
            to = %to.node_id,
            "forwarded"
        );
        self.objects.note_forwarded(
            spec.return_id,
            Forwarded {
                node_id: to.node_id.clone(),
                what: format!("task `{}`", spec.function),
                args: spec.args.clone(),
                task: Some(Box::new(attempt)),
                actor_call: None,
            },
        );
        link.forward(work);
    }

    fn check(&self, spec: &TaskSpec) -> ReefResult<Arc<Module>> {
        if self.stopping.is_cancelled() {
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

    async fn drive(
        self: Arc<Self>,
        attempt: Attempt,
        module: Arc<Module>,
        series: Arc<TaskFn>,
        pool: Pool,
        prepared: Prepared,
        task: Arc<LiveTask>,
    ) {
        let spec = &attempt.spec;
        let id = spec.return_id;
        // Removing the task's placement group stops it.
        let group_watch = pool.removed.clone().map(|removed| {
            let this = self.clone();
            let group = spec.strategy.group().unwrap_or(0);
            tokio::spawn(async move {
                removed.cancelled().await;
                this.table.stop(id, StopReason::GroupRemoved(group));
            })
        });
        let started_at_us = history::now_micros();
        let running_at_us = std::sync::atomic::AtomicU64::new(0);
        let result = tokio::select! {
            biased; // a stopped task must not start after all
            _ = task.cancel().cancelled() => Err(StopReason::Cancelled.error()),
            r = self.run(spec, (&module, &series), &pool.scheduler, prepared, &task, &running_at_us) => r,
        };
        let (result, spent) = match result {
            Ok((result, spent)) => (result, spent),
            Err(e) => (Err(e), None),
        };
        if let Some(watch) = group_watch {
            watch.abort();
        }
        let reason = self.table.finish(id);
        // A task stopped for a reason reports that reason, whatever the guest did.
        let result = match (result, reason) {
            (Err(_), Some(reason)) => Err(reason.error()),
            (r, _) => r,
        };
        self.history.record(history::Finished {
            return_id: id,
            module: spec.module.clone(),
            function: spec.function.clone(),
            attempt: attempt.number,
            tenant: spec.tenant.clone(),
            error: result.as_ref().err().map(history::error_of),
            started_at_us,
            running_at_us: running_at_us.into_inner(),
            ended_at_us: history::now_micros(),
        });
        // Every attempt's outcome counts (a retried failure too).
        series.done(result.as_ref().err().map(|e| e.code));
        // What the task made counts against its tenant's arena bytes while
        // it lives; over the quota, the task fails instead. Bytes another
        // live object holds too (a result returned by reference) are that
        // object's, counted once.
        let result = result.and_then(|data| {
            let charge = match Arc::strong_count(&data) {
                1 => self.objects.store().charge_arena(&spec.tenant, &data)?,
                _ => None,
            };
            Ok((data, charge))
        });
        match result {
            Ok((data, charge)) => {
                self.objects.seal(id, Ok(data));
                self.objects.store().keep_charge(id, charge);
                self.objects.release_args(&spec.args);
            }
            Err(e) => self.settle_failure(attempt, e, None),
        }
        // An instance slow to drop is dropped once whoever waits for the
        // result had its turn: on the RPC thread a reply is written by the
        // session's task, which the seal woke (see `Spent`). On a guest
        // thread nothing waits behind it here, and a turn would keep its
        // CPUs idle behind other guests' calls.
        if spent.is_some() && !self.guests.on_guest_thread() {
            tokio::task::yield_now().await;
        }
        drop(spent);
    }

    async fn run(
        self: &Arc<Self>,
        spec: &TaskSpec,
        (module, series): (&Arc<Module>, &Arc<TaskFn>),
        pool: &Arc<Scheduler>,
        Prepared { ticket, resolved }: Prepared,
        task: &Arc<LiveTask>,
        running_at_us: &std::sync::atomic::AtomicU64,
    ) -> ReefResult<Ran> {
        let (args, allowed) = match resolved {
            Some(resolved) => resolved?,
            None => self.objects.resolve_args(&spec.args).await?,
        };
        task.set_state("waiting-for-resources");
        let resources = spec.options.task_resources();
        let ticket =
            ticket.unwrap_or_else(|| pool.enqueue(&self.quotas.share(&spec.tenant), &resources));
        let permit = ticket.granted().await;
        running_at_us.store(history::now_micros(), std::sync::atomic::Ordering::Relaxed);
        task.set_state("running");
        let call = GuestCall {
            module: module.clone(),
            function: spec.function.clone(),
            args,
            allowed,
            resources,
            permit,
            limits: self.config.limits(&spec.options),
            cancel: task.cancel().clone(),
            log: self.logs.task(spec.return_id, &spec.tenant),
            max_calls: spec.options.max_calls(),
            series: series.clone(),
        };
        let host = self.host()?.for_tenant(&spec.tenant);
        let (this, task) = (self.clone(), task.clone());
        // Boxed: the running call's state (wasmtime's instantiate and call)
        // is allocated once the task runs, not carried by every queued
        // task's future: that future was 6,976 bytes, now 1,600; 50,000
        // queued noops took the node's peak RSS from 1.10-1.13 GB to
        // 0.83-0.85 GB and its CPU from 6.4-8.3 s to 5.2-5.8 s (the
        // memory was allocated and faulted in afresh on the RPC thread).
        let timed = module.run_times.times_call(&spec.function);
        let call = Box::pin(inline::cpu_timed_if(timed, async move {
            let (out, permit, spent) = execute(host, call, &this).await;
            // No longer running before its CPUs go to the next task (which
            // may start on another thread at once): the state API never
            // shows a tenant more tasks running than its quota allows.
            task.set_state("finishing");
            // An instance dropped later holds them until it is dropped.
            let spent = match spent {
                Some(spent) => Some(spent.holding(permit)),
                None => {
                    drop(permit);
                    None
                }
            };
            (out, spent)
        }));
        let (out, cpu) = if self.guests.on_guest_thread() {
            call.await
        } else {
            // A tenant with more calls waiting for CPUs on a node it shares
            // is flooding it: its calls go to the guest threads, and the RPC
            // thread stays free to read and answer the other tenants'
            // requests (see `inline`).
            let inline =
                module.run_times.starts_inline(&spec.function) && !pool.crowds_others(&spec.tenant);
            self.start_from_rpc_thread(call, inline).await?
        };
        if let Some(cpu) = cpu {
            module.run_times.record(&spec.function, cpu);
        }
        Ok(out)
    }

    /// Runs a guest call started on the RPC thread: its first slice here
    /// when `inline` (see `inline`) and no other guest is doing so. A short
    /// task then finishes without any hand-off between threads; one that has
    /// to wait or runs past an epoch tick moves, mid-call, to the guest
    /// threads, where a call not taken inline runs from the start.
    async fn start_from_rpc_thread(
        &self,
        mut call: std::pin::Pin<
            Box<impl std::future::Future<Output = (Ran, Option<Duration>)> + Send + 'static>,
        >,
        inline: bool,
    ) -> ReefResult<(Ran, Option<Duration>)> {
        if inline {
            if let Some(_inline) = self.guests.claim_inline() {
                if let std::task::Poll::Ready(out) = futures::poll!(call.as_mut()) {
                    return Ok(out);
                }
            }
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.guests.spawn(async move {
            let ((out, spent), cpu) = call.await;
            // The instance is dropped here, beside the RPC thread sealing the result.
            let _ = tx.send(((out, None), cpu));
            drop(spent);
        });
        rx.await
            .map_err(|_| ReefError::internal("the guest thread stopped"))
    }
}

/// A guest call's result, and its instance when that is to be dropped
/// after the result is sealed (see `Spent`).
type Ran = (ReefResult<Arc<Data>>, Option<Spent>);

/// A task's arguments once every object among them is here (see
/// `ObjectDirectory::resolve_args`).
type ResolvedArgs = ReefResult<(Vec<Arg>, FastSet<ObjectId>)>;

/// What a task got where it was scheduled, before it is driven: its place
/// in the CPU line (a task whose arguments are all values, not queued) or
/// its arguments (a task that waited for them before it could queue).
struct Prepared {
    ticket: Option<Ticket>,
    resolved: Option<ResolvedArgs>,
}

/// Whether fresh instances of `module` are made ahead of time: making one
/// takes long enough to be worth a hand-off to a guest thread
/// (`--prestart-min-us`; see `guest::warm`).
fn prestarts(tasks: &Tasks, module: &Module) -> bool {
    tasks
        .config
        .prestart_min
        .is_some_and(|min| module.run_times.instantiate_time() >= min)
}

/// Has the next fresh instance of `key` made on a guest thread when the
/// pool takes it (see `guest::warm`). It is made as a task's own would be,
/// with a cancellation token of its own (the task that takes it brings its
/// own) and no log: what a guest writes while it is made is not kept.
fn prestart(tasks: &Tasks, host: &HostServices, module: &Arc<Module>, key: &WarmKey) {
    if !tasks.warm.claim_prestart(key) {
        return;
    }
    let (host, module, key, warm) = (
        host.clone(),
        module.clone(),
        key.clone(),
        tasks.warm.clone(),
    );
    tasks.guests.spawn(async move {
        let mut store = exec::new_store(&host, &module, key.limits, CancellationToken::new());
        let made = instantiate_timed(&mut store, &module).await;
        let made = made.ok().map(|instance| Warm {
            store,
            instance,
            module,
            calls: 0,
        });
        warm.prestarted(key, made);
    });
}

/// Instantiates `module`, adding the CPU time it took to the module's
/// average (which decides whether instances are made ahead: `prestarts`).
async fn instantiate_timed(
    store: &mut wasmtime::Store<crate::guest::ctx::GuestCtx>,
    module: &Module,
) -> ReefResult<wasmtime::component::Instance> {
    let (made, cpu) = inline::cpu_timed(exec::instantiate(store, module)).await;
    module.run_times.record_instantiate(cpu);
    made
}

/// Lost results rebuilt by their owner (see `objects`): the task runs again
/// as a fresh attempt with the same result id, placed anew, retried like
/// any task.
impl Rebuild for Tasks {
    fn rebuild(&self, spec: TaskSpec) {
        let Some(this) = self.me.get().and_then(std::sync::Weak::upgrade) else {
            return;
        };
        let id = spec.return_id;
        let spec = TaskSpec { hops: 0, ..spec };
        let module = match this.check(&spec) {
            Ok(module) => module,
            Err(e) => {
                self.objects.release_args(&spec.args);
                return self.objects.store().resolve(id, Err(e));
            }
        };
        let series = this
            .metrics
            .task(Some(&module), &spec.module, &spec.function);
        this.schedule(
            Attempt { spec, number: 1 },
            module,
            series,
            None,
            Some(Instant::now() + NODE_WAIT),
        );
    }
}

/// Runs a task's guest call in a fresh instance (made now, or ahead of
/// time: see `prestart`), or in a kept one when the task allows it
/// (`max_calls` other than 1) and one of its key is idle.
/// Hands back the call's CPUs (its permit) with the result, for the caller
/// to release once the task no longer shows as running, and the instance
/// when it is not kept and slow to drop, for the caller to drop once the
/// result is on its way (see `Spent`).
async fn execute(
    host: HostServices,
    call: GuestCall,
    tasks: &Tasks,
) -> (ReefResult<Arc<Data>>, Option<Permit>, Option<Spent>) {
    let warm = &tasks.warm;
    let GuestCall {
        module,
        function,
        args,
        allowed,
        resources,
        permit,
        limits,
        cancel,
        log,
        max_calls,
        series,
    } = call;
    // A fresh instance may have been made ahead (`prestart`); with
    // `max_calls` 1 the key finds only those, which never ran a call (kept
    // ones go back only when they may serve more).
    let ahead = max_calls == 1 && prestarts(tasks, &module);
    let key = (warm.enabled() && (max_calls != 1 || ahead)).then(|| WarmKey {
        module: module.hash.clone(),
        tenant: host.tenant().clone(),
        limits,
        max_calls,
    });
    let kept = key.as_ref().and_then(|k| warm.take(k, &module));
    // Its services, for the instance made ahead for the next such task.
    let prestart_host = ahead.then(|| host.clone());
    // The next instance is made ahead (the pool is on and the module slow to instantiate).
    let made_ahead = ahead && key.is_some();
    let (mut store, instance, calls) = match kept {
        Some(Warm {
            mut store,
            instance,
            calls,
            ..
        }) => {
            if calls == 0 {
                series.instance_started();
            }
            store.data_mut().begin_reuse(host, cancel);
            exec::rearm(&mut store);
            (store, Some(instance), calls)
        }
        None => {
            series.instance_started();
            (exec::new_store(&host, &module, limits, cancel), None, 0)
        }
    };
    {
        let ctx = store.data_mut();
        ctx.output.begin(log);
        ctx.allowed = allowed;
        ctx.resources = resources;
        ctx.permit = Some(permit);
    }
    let instance = match instance {
        Some(instance) => Ok(instance),
        None if module.run_times.times_instantiation() => {
            instantiate_timed(&mut store, &module).await
        }
        None => exec::instantiate(&mut store, &module).await,
    };
    let result = match instance {
        Ok(instance) => exec::call_output(
            &mut store,
            &instance,
            &module.exports.run_task,
            &function,
            &args,
        )
        .await
        .map(|data| (data, instance)),
        Err(e) => Err(e),
    };
    // The next fresh instance is made once this call is done, not beside
    // it: on a node whose cores are busy it would slow this call.
    if let (Some(host), Some(key)) = (&prestart_host, &key) {
        prestart(tasks, host, &module, key);
    }
    store.data_mut().output.finish();
    store.data_mut().finish();
    let permit = store.data_mut().permit.take();
    let (data, instance) = match result {
        Ok(done) => done,
        Err(e) => return (Err(e), permit, Spent::later(store, module, made_ahead)),
    };
    let calls = calls + 1;
    let again = max_calls == 0 || calls < max_calls;
    if let Some(key) = key {
        if again && store.data().reusable() {
            store.data_mut().end_call();
            warm.put(
                key,
                Warm {
                    store,
                    instance,
                    module,
                    calls,
                },
            );
            return (Ok(data), permit, None);
        }
    }
    (Ok(data), permit, Spent::later(store, module, made_ahead))
}
