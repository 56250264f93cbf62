//! Tasks: a call of an exported function in a fresh instance. A submitted
//! task waits for its object arguments (a DAG), then for resources, runs,
//! and seals its result object with the output or the typed error.
//!
//! The steps of one task here: [`Tasks::submit`] creates the pending result
//! and checks the call → `schedule` asks `placement` where it runs (here,
//! or forwarded to another node) → `drive` waits for the arguments and a
//! permit, runs the guest and seals the result.

mod table;

use std::collections::HashSet;
use std::sync::{Arc, OnceLock};

use reef_proto as pb;
use tokio_util::sync::CancellationToken;

use crate::cluster::groups::{Bundles, Pool};
use crate::cluster::Membership;
use crate::config::NodeConfig;
use crate::error::{ErrorCode, ReefError, ReefResult};
use crate::guest::exec;
use crate::guest::types::Arg;
use crate::guest::HostServices;
use crate::logs::{GuestLogs, LogStore};
use crate::metrics::Metrics;
use crate::module::Module;
use crate::modules::Registry;
use crate::objects::{Forwarded, ObjectDirectory};
use crate::placement::{self, Decision, Strategy};
use crate::runtime::GuestRuntime;
use crate::scheduler::{Resources, Scheduler, Ticket};
use crate::spec::{object_ids, short, task_from_proto, task_to_proto, Limits, TaskSpec};
use crate::store::{Data, ObjectId};

pub use table::{StopReason, TaskRow, TaskTable};

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

/// The node's task service.
pub struct Tasks {
    config: Arc<NodeConfig>,
    table: TaskTable,
    logs: Arc<LogStore>,
    objects: Arc<ObjectDirectory>,
    registry: Arc<Registry>,
    cluster: Arc<Membership>,
    bundles: Arc<Bundles>,
    scheduler: Arc<Scheduler>,
    guests: Arc<GuestRuntime>,
    /// What the guests of this service's tasks may reach (set once at start).
    host: OnceLock<HostServices>,
    stopping: CancellationToken,
    metrics: Arc<Metrics>,
}

/// What the task service is built from (see `node.rs`).
pub struct TaskDeps {
    pub config: Arc<NodeConfig>,
    pub logs: Arc<LogStore>,
    pub objects: Arc<ObjectDirectory>,
    pub registry: Arc<Registry>,
    pub cluster: Arc<Membership>,
    pub bundles: Arc<Bundles>,
    pub scheduler: Arc<Scheduler>,
    pub guests: Arc<GuestRuntime>,
    pub stopping: CancellationToken,
    pub metrics: Arc<Metrics>,
}

impl Tasks {
    pub fn new(deps: TaskDeps) -> Self {
        Tasks {
            config: deps.config,
            table: TaskTable::default(),
            logs: deps.logs,
            objects: deps.objects,
            registry: deps.registry,
            cluster: deps.cluster,
            bundles: deps.bundles,
            scheduler: deps.scheduler,
            guests: deps.guests,
            host: OnceLock::new(),
            stopping: deps.stopping,
            metrics: deps.metrics,
        }
    }

    /// Gives the service the host services its guests get (once, at start).
    pub fn set_host(&self, host: HostServices) {
        let _ = self.host.set(host);
    }

    fn host(&self) -> ReefResult<&HostServices> {
        self.host
            .get()
            .ok_or_else(|| ReefError::internal("the task service is not started"))
    }

    pub fn table(&self) -> &TaskTable {
        &self.table
    }

    /// Submits a task. The result object `spec.return_id` is created at once;
    /// a task that cannot run (unknown module or function, infeasible
    /// resources, unknown argument) seals it with the error. Fails only when
    /// the return id is already in use.
    pub fn submit(self: &Arc<Self>, spec: TaskSpec) -> ReefResult<()> {
        let store = self.objects.store();
        if let Err(e) = store.create_pending(spec.return_id, 1) {
            // A forwarded task whose result a task here already waits for
            // (a placeholder asking the owner, see `ObjectDirectory::hold`):
            // adopt it.
            let placeholder = spec.hops > 0
                && !self.objects.owns(spec.return_id)
                && matches!(store.is_ready(spec.return_id), Ok(false));
            if !placeholder {
                return Err(e);
            }
            store.add_ref(spec.return_id)?;
        }
        let module = match self.check(&spec) {
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
                let module = self.registry.get(&spec.module).ok();
                self.count(&spec, module.as_deref(), Some(&e));
                self.objects.seal(spec.return_id, Err(e));
                return Ok(());
            }
        };
        if let Err(e) = self.objects.hold_args(&spec.args) {
            self.count(&spec, module.as_deref(), Some(&e));
            self.objects.seal(spec.return_id, Err(e));
            return Ok(());
        }
        match module {
            Some(module) => {
                self.count(&spec, Some(&module), None);
                self.schedule(spec, module)
            }
            None => {
                let this = self.clone();
                tokio::spawn(async move {
                    let fetched = match this.fetch_module(&spec.module).await {
                        Ok(()) => this.check(&spec),
                        Err(e) => Err(e),
                    };
                    let module = fetched.as_ref().ok().map(|m| &**m);
                    this.count(&spec, module, fetched.as_ref().err());
                    match fetched {
                        Ok(module) => this.schedule(spec, module),
                        Err(e) => this.objects.fail(spec.return_id, e, &spec.args),
                    }
                });
            }
        }
        Ok(())
    }

    /// Counts a task submitted here by a driver or guest (forwarded ones
    /// were counted where they were submitted) and, when it cannot run, its
    /// failure.
    fn count(&self, spec: &TaskSpec, module: Option<&Module>, rejected: Option<&ReefError>) {
        let series = self.metrics.task(module, &spec.module, &spec.function);
        if spec.hops == 0 {
            series.submitted();
        }
        if let Some(e) = rejected {
            series.done(Some(e.code));
        }
    }

    async fn fetch_module(&self, hash: &str) -> ReefResult<()> {
        self.registry.fetch(self.host()?, hash).await.map(|_| ())
    }

    /// Work another node forwarded here.
    pub fn accept_forwarded(self: &Arc<Self>, task: pb::SubmitTask, strategy: Strategy, hops: u32) {
        let spec = match task_from_proto(task, strategy, hops) {
            Ok(spec) => spec,
            Err(e) => return tracing::warn!("bad forwarded task: {e}"),
        };
        if self.registry.get(&spec.module).is_ok() {
            return self.submit_forwarded(spec);
        }
        // First use of a module here: fetch it from the control plane by hash.
        let this = self.clone();
        tokio::spawn(async move {
            if let Err(e) = this.fetch_module(&spec.module).await {
                this.objects.store().create_pending(spec.return_id, 1).ok();
                this.objects.seal(spec.return_id, Err(e));
                return;
            }
            this.submit_forwarded(spec);
        });
    }

    fn submit_forwarded(self: &Arc<Self>, spec: TaskSpec) {
        let id = spec.return_id;
        if let Err(e) = self.submit(spec) {
            tracing::warn!("forwarded task {id:#x}: {e}");
        }
    }

    /// Where a task runs (see `placement::place`).
    fn place(&self, spec: &TaskSpec, resources: &Resources) -> ReefResult<Decision> {
        let group = match &spec.strategy {
            Strategy::PlacementGroup { group, bundle } => {
                Some(self.bundles.facts(*group, *bundle, resources))
            }
            _ => None,
        };
        let local = placement::Local {
            node_id: self.cluster.node_id(),
            total: self.scheduler.total().clone(),
            available: self.scheduler.available(),
            queued: self.scheduler.queued(),
            clustered: self.cluster.is_clustered(),
            group,
        };
        let request = placement::Request {
            resources,
            strategy: &spec.strategy,
            hops: spec.hops,
            spread: self.cluster.next_spread(),
        };
        let args = self.objects.argument_bytes(&spec.args);
        placement::place(&request, &local, &self.cluster.view(), &args)
    }

    /// Places a checked task whose arguments are held: runs it here or
    /// forwards it.
    fn schedule(self: &Arc<Self>, spec: TaskSpec, module: Arc<Module>) {
        let resources = spec.options.task_resources();
        let placed = self
            .place(&spec, &resources)
            .and_then(|decision| match decision {
                Decision::Local => self.bundles.pool_for(&spec.strategy, &resources).map(Ok),
                Decision::Remote(to) => Ok(Err(*to)),
            });
        let pool = match placed {
            Ok(Ok(pool)) => pool,
            Ok(Err(to)) => return self.forward(spec, &to),
            Err(e) => {
                let series = self
                    .metrics
                    .task(Some(&module), &spec.module, &spec.function);
                series.done(Some(e.code));
                return self.objects.fail(spec.return_id, e, &spec.args);
            }
        };
        let series = self
            .metrics
            .task(Some(&module), &spec.module, &spec.function);
        let cancel = self.table.insert(&spec, series);
        // A task whose arguments are all values takes its place in line now.
        let ticket = object_ids(&spec.args)
            .next()
            .is_none()
            .then(|| pool.scheduler.enqueue(&resources));
        let this = self.clone();
        tokio::spawn(async move { this.drive(spec, module, pool, ticket, cancel).await });
    }

    /// Sends a task (its result pending here, its arguments held) to another node.
    fn forward(&self, spec: TaskSpec, to: &pb::NodeView) {
        let link = match self.cluster.peer(&to.node_id) {
            Ok(link) => link,
            Err(e) => return self.objects.fail(spec.return_id, e, &spec.args),
        };
        let work = pb::ForwardedWork {
            work: Some(pb::forwarded_work::Work::Task(task_to_proto(&spec))),
            strategy: Some(spec.strategy.to_proto()),
            hops: spec.hops + 1,
        };
        self.objects.note_forwarded(
            spec.return_id,
            Forwarded {
                node_id: to.node_id.clone(),
                what: format!("task `{}`", spec.function),
                task: Some((spec.module, spec.function)),
                args: spec.args,
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
        spec: TaskSpec,
        module: Arc<Module>,
        pool: Pool,
        ticket: Option<Ticket>,
        cancel: CancellationToken,
    ) {
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
        let (result, logs) = tokio::select! {
            biased; // a stopped task must not start after all
            _ = cancel.cancelled() => (Err(StopReason::Cancelled.error()), None),
            r = self.run(&spec, &module, &pool.scheduler, ticket, cancel.clone()) => r,
        };
        if let Some(watch) = group_watch {
            watch.abort();
        }
        let reason = self.table.finish(id);
        if let Some(logs) = logs {
            self.logs.put(id, logs);
        }
        // A task stopped for a reason reports that reason, whatever the guest did.
        let result = match (result, reason) {
            (Err(_), Some(reason)) => Err(reason.error()),
            (r, _) => r,
        };
        self.metrics
            .task(Some(&module), &spec.module, &spec.function)
            .done(result.as_ref().err().map(|e| e.code));
        self.objects.seal(id, result);
        self.objects.release_args(&spec.args);
    }

    async fn run(
        self: &Arc<Self>,
        spec: &TaskSpec,
        module: &Arc<Module>,
        pool: &Arc<Scheduler>,
        ticket: Option<Ticket>,
        cancel: CancellationToken,
    ) -> (ReefResult<Arc<Data>>, Option<GuestLogs>) {
        let (args, allowed) = match self.objects.resolve_args(&spec.args).await {
            Ok(a) => a,
            Err(e) => return (Err(e), None),
        };
        self.table
            .set_state(spec.return_id, "waiting-for-resources");
        let resources = spec.options.task_resources();
        let ticket = ticket.unwrap_or_else(|| pool.enqueue(&resources));
        let permit = ticket.granted().await;
        self.table.set_state(spec.return_id, "running");
        let call = GuestCall {
            module: module.clone(),
            function: spec.function.clone(),
            args,
            allowed,
            resources,
            permit,
            limits: self.config.limits(&spec.options),
            cancel,
        };
        let host = match self.host() {
            Ok(host) => host.clone(),
            Err(e) => return (Err(e), None),
        };
        if self.guests.on_guest_thread() {
            return execute(host, call).await;
        }
        // On the RPC thread: take the first slice here when no other guest
        // is doing so. A short task then finishes without any hand-off
        // between threads; one that has to wait or runs past an epoch tick
        // moves, mid-call, to the guest threads.
        let mut call = Box::pin(execute(host, call));
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
}

/// Runs a task's guest call in a fresh instance.
async fn execute(
    host: HostServices,
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
    let mut store = exec::new_store(&host, &module, limits, cancel);
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
