//! The node's metrics: one [`Metrics`] owns the Prometheus registry and
//! every metric family; services get an `Arc<Metrics>` when `node.rs`
//! wires them and bump atomics (no lock is held across an await). Values
//! that already live elsewhere (store usage, the instance pool, actors,
//! modules, pulled bytes, memory) are read when `/metrics` is scraped, from
//! a [`Snapshot`] the node provides ([`Metrics::set_source`]).
//!
//! **Cardinality.** Task and actor series are labelled by module (the first
//! 12 hex digits of its hash), function (or class and method) and error
//! code: modules and their exports are those registered on the node, error
//! codes a fixed enum. A name the module does not export is counted as
//! `unknown`, and past [`MAX_FUNCTIONS`] known pairs further ones are
//! counted as `other`, so a client cannot grow the series without bound.
//! RPC series are labelled by gRPC method, capped the same way. `tenant` is
//! `default` until tenancy lands (then it is one value per tenant).
//!
//! **Off** (`host start --no-metrics`, [`Metrics::off`]): no registry and
//! no families; a task's or method's series is one shared no-op handle
//! whose methods return at once, the gRPC layer is not installed and no
//! `/metrics` listener runs. Lineage series still count (the lineage keeps
//! them under its own lock) but are registered nowhere.
//!
//! The HTTP endpoint is [`http`], the gRPC instrumentation [`rpc`].

pub mod http;
pub mod rpc;

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use crate::error::ErrorCode;
pub use crate::lineage::LineageMetrics;
use crate::module::Module;

/// The tenant label of every task and actor series until tenancy lands.
pub const TENANT: &str = "default";

/// Known (module, function) pairs with series of their own; more are `other`.
pub const MAX_FUNCTIONS: usize = 512;

/// gRPC methods with series of their own; more are `other`.
pub const MAX_RPC_METHODS: usize = 64;

const UNKNOWN: &str = "unknown";
const OTHER: &str = "other";

/// Latency buckets: 10 µs to ~42 s, ×4 apart.
fn latency_buckets() -> Histogram {
    Histogram::new(exponential_buckets(1e-5, 4.0, 12))
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FnLabels {
    tenant: &'static str,
    module: String,
    function: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FailLabels {
    tenant: &'static str,
    module: String,
    function: String,
    code: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabels {
    tenant: &'static str,
    module: String,
    class: String,
    method: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodFailLabels {
    tenant: &'static str,
    module: String,
    class: String,
    method: String,
    code: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RpcLabels {
    method: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RpcStatusLabels {
    method: String,
    code: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// The series of one task function, looked up once per task transition
/// (no series: metrics are off, every call returns at once).
pub struct TaskFn(Option<TaskSeries>);

struct TaskSeries {
    labels: FnLabels,
    submitted: Counter,
    running: Gauge,
    finished: Counter,
    scheduling: Histogram,
    run_time: Histogram,
    instance_starts: Counter,
    failed: Family<FailLabels, Counter>,
}

impl TaskFn {
    /// A task was submitted to this node by a driver or a guest.
    pub fn submitted(&self) {
        if let Some(s) = &self.0 {
            s.submitted.inc();
        }
    }

    /// The task got its resources after waiting `waited` since it was
    /// accepted here (for its arguments, then its resources).
    pub fn started(&self, waited: Duration) {
        if let Some(s) = &self.0 {
            s.running.inc();
            s.scheduling.observe(waited.as_secs_f64());
        }
    }

    /// The task runs in a fresh instance (not one kept for reuse, `max_calls`).
    pub fn instance_started(&self) {
        if let Some(s) = &self.0 {
            s.instance_starts.inc();
        }
    }

    /// The task stopped running after `ran`.
    pub fn stopped(&self, ran: Duration) {
        if let Some(s) = &self.0 {
            s.running.dec();
            s.run_time.observe(ran.as_secs_f64());
        }
    }

    /// The task's result was sealed: a value, or an error with `code`.
    pub fn done(&self, error: Option<ErrorCode>) {
        let Some(s) = &self.0 else {
            return;
        };
        match error {
            None => {
                s.finished.inc();
            }
            Some(code) => {
                let labels = FailLabels {
                    tenant: TENANT,
                    module: s.labels.module.clone(),
                    function: s.labels.function.clone(),
                    code: code.as_str_name(),
                };
                s.failed.get_or_create(&labels).inc();
            }
        }
    }
}

/// The module label: the first 12 hex digits of its hash.
fn module_label(hash: &str) -> String {
    hash[..hash.len().min(12)].to_string()
}

/// Bounded label maps: (module hash, name) → series, at most `cap` entries.
struct Bounded<T> {
    map: RwLock<HashMap<String, HashMap<String, Arc<T>>>>,
    len: std::sync::atomic::AtomicUsize,
    cap: usize,
}

impl<T> Bounded<T> {
    fn new(cap: usize) -> Self {
        Bounded {
            map: Default::default(),
            len: Default::default(),
            cap,
        }
    }

    /// The series of (`module`, `name`): made by `make` the first time
    /// when `known` says the module exports it; `unknown` when it does
    /// not, `over_cap` past the cap.
    fn get(
        &self,
        module: &str,
        name: &str,
        known: impl FnOnce() -> bool,
        make: impl FnOnce(String, String) -> T,
        over_cap: &Arc<T>,
        unknown: &Arc<T>,
    ) -> Arc<T> {
        if let Some(t) = self
            .map
            .read()
            .unwrap()
            .get(module)
            .and_then(|m| m.get(name))
        {
            return t.clone();
        }
        if !known() {
            return unknown.clone();
        }
        use std::sync::atomic::Ordering;
        let mut map = self.map.write().unwrap();
        let names = map.entry(module.to_string()).or_default();
        if let Some(t) = names.get(name) {
            return t.clone();
        }
        if self.len.load(Ordering::Relaxed) >= self.cap {
            return over_cap.clone();
        }
        self.len.fetch_add(1, Ordering::Relaxed);
        let t = Arc::new(make(module_label(module), name.to_string()));
        names.insert(name.to_string(), t.clone());
        t
    }
}

struct TaskFamilies {
    submitted: Family<FnLabels, Counter>,
    running: Family<FnLabels, Gauge>,
    finished: Family<FnLabels, Counter>,
    failed: Family<FailLabels, Counter>,
    scheduling: HistogramFamily<FnLabels>,
    run_time: HistogramFamily<FnLabels>,
    instance_starts: Counter,
}

impl TaskFamilies {
    fn series(&self, module: String, function: String) -> TaskFn {
        let labels = FnLabels {
            tenant: TENANT,
            module,
            function,
        };
        TaskFn(Some(TaskSeries {
            submitted: self.submitted.get_or_create_owned(&labels),
            running: self.running.get_or_create_owned(&labels),
            finished: self.finished.get_or_create_owned(&labels),
            scheduling: self.scheduling.get_or_create_owned(&labels),
            run_time: self.run_time.get_or_create_owned(&labels),
            instance_starts: self.instance_starts.clone(),
            failed: self.failed.clone(),
            labels,
        }))
    }
}

/// The series of one actor method (no series: metrics are off).
pub struct ActorMethod(Option<MethodSeries>);

struct MethodSeries {
    labels: MethodLabels,
    calls: Counter,
    latency: Histogram,
    failed: Family<MethodFailLabels, Counter>,
}

impl ActorMethod {
    /// A call ran for `took` and returned a value or failed with `error`.
    pub fn called(&self, took: Duration, error: Option<ErrorCode>) {
        let Some(s) = &self.0 else {
            return;
        };
        s.calls.inc();
        s.latency.observe(took.as_secs_f64());
        if let Some(code) = error {
            let l = &s.labels;
            s.failed
                .get_or_create(&MethodFailLabels {
                    tenant: TENANT,
                    module: l.module.clone(),
                    class: l.class.clone(),
                    method: l.method.clone(),
                    code: code.as_str_name(),
                })
                .inc();
        }
    }
}

/// Series of one gRPC method.
pub struct RpcMethod {
    method: String,
    latency: Histogram,
    /// The OK series, looked up once (most calls end OK).
    ok: Counter,
    by_status: Family<RpcStatusLabels, Counter>,
}

impl RpcMethod {
    fn new(
        method: &str,
        latency: &HistogramFamily<RpcLabels>,
        by_status: &Family<RpcStatusLabels, Counter>,
    ) -> RpcMethod {
        RpcMethod {
            method: method.to_string(),
            latency: latency.get_or_create_owned(&RpcLabels {
                method: method.to_string(),
            }),
            ok: by_status.get_or_create_owned(&RpcStatusLabels {
                method: method.to_string(),
                code: "0".to_string(),
            }),
            by_status: by_status.clone(),
        }
    }

    /// A call was answered after `took` with gRPC status `code` ("0": OK;
    /// a streaming call is counted when its response starts).
    pub fn answered(&self, took: Duration, code: &str) {
        self.latency.observe(took.as_secs_f64());
        if code == "0" {
            self.ok.inc();
            return;
        }
        let code = if code.len() <= 2 && code.bytes().all(|b| b.is_ascii_digit()) {
            code
        } else {
            OTHER
        };
        self.by_status
            .get_or_create(&RpcStatusLabels {
                method: self.method.clone(),
                code: code.to_string(),
            })
            .inc();
    }
}

/// Values read when `/metrics` is scraped.
#[derive(Debug, Default, Clone)]
pub struct Snapshot {
    pub objects: u64,
    pub arena_capacity: u64,
    pub arena_used: u64,
    pub inline_bytes: u64,
    pub spilled_bytes: u64,
    pub spills: u64,
    pub spilled_bytes_total: u64,
    pub restores: u64,
    pub restored_bytes_total: u64,
    pub segment_moves: u64,
    pub segment_moved_bytes: u64,
    pub pulled_bytes: u64,
    pub pulls: u64,
    pub pulls_in_progress: u64,
    /// Local actors by state (`starting`, `alive`, `dead`).
    pub actors: Vec<(&'static str, u64)>,
    /// Modules loaded from the compiled-artifact cache and compiled here.
    pub modules_cached: u64,
    pub modules_compiled: u64,
    /// Live component instances and linear memories in the pool.
    pub pool_instances: u64,
    pub pool_memories: u64,
    pub pool_capacity: u64,
    /// Idle task instances kept for reuse (`max_calls`).
    pub warm_instances: u64,
    pub tasks_queued: u64,
}

type Source = Box<dyn Fn() -> Snapshot + Send + Sync>;

/// Emits the snapshot's values on each scrape.
struct SnapshotCollector(Arc<OnceLock<Source>>);

impl std::fmt::Debug for SnapshotCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SnapshotCollector")
    }
}

fn gauge(e: &mut DescriptorEncoder, name: &str, help: &str, v: u64) -> std::fmt::Result {
    let g = ConstGauge::new(v as i64);
    g.encode(e.encode_descriptor(name, help, None, MetricType::Gauge)?)
}

fn counter(e: &mut DescriptorEncoder, name: &str, help: &str, v: u64) -> std::fmt::Result {
    let c = ConstCounter::new(v);
    c.encode(e.encode_descriptor(name, help, None, MetricType::Counter)?)
}

impl Collector for SnapshotCollector {
    fn encode(&self, mut e: DescriptorEncoder) -> std::fmt::Result {
        let Some(source) = self.0.get() else {
            return Ok(());
        };
        let s = source();
        let e = &mut e;
        gauge(e, "reef_objects", "Objects in the node's store.", s.objects)?;
        gauge(
            e,
            "reef_arena_capacity_bytes",
            "Size of the shared-memory arena.",
            s.arena_capacity,
        )?;
        gauge(
            e,
            "reef_arena_used_bytes",
            "Bytes of the arena in use by objects.",
            s.arena_used,
        )?;
        gauge(
            e,
            "reef_inline_bytes",
            "Bytes of small objects kept on the heap.",
            s.inline_bytes,
        )?;
        gauge(
            e,
            "reef_spilled_bytes",
            "Bytes of objects spilled to disk now.",
            s.spilled_bytes,
        )?;
        counter(e, "reef_spills", "Objects spilled to disk.", s.spills)?;
        counter(
            e,
            "reef_spill_bytes",
            "Bytes spilled to disk.",
            s.spilled_bytes_total,
        )?;
        counter(
            e,
            "reef_restores",
            "Spilled objects read back into the arena.",
            s.restores,
        )?;
        counter(
            e,
            "reef_restore_bytes",
            "Bytes read back from the spill directory.",
            s.restored_bytes_total,
        )?;
        counter(
            e,
            "reef_segment_moves",
            "Arena objects moved into a sealed segment of their own for a driver on this machine.",
            s.segment_moves,
        )?;
        counter(
            e,
            "reef_segment_move_bytes",
            "Bytes of arena objects moved into segments for drivers on this machine.",
            s.segment_moved_bytes,
        )?;
        counter(
            e,
            "reef_pull_bytes",
            "Object bytes pulled from other nodes (rate: rate()).",
            s.pulled_bytes,
        )?;
        counter(e, "reef_pulls", "Objects pulled from other nodes.", s.pulls)?;
        gauge(
            e,
            "reef_pulls_in_progress",
            "Pulls under way.",
            s.pulls_in_progress,
        )?;
        {
            let mut m = e.encode_descriptor(
                "reef_actors",
                "Actors living on this node, by state.",
                None,
                MetricType::Gauge,
            )?;
            for (state, n) in &s.actors {
                let labels = [("tenant", TENANT), ("state", *state)];
                ConstGauge::new(*n as i64).encode(m.encode_family(&labels)?)?;
            }
        }
        {
            let mut m = e.encode_descriptor(
                "reef_module_loads",
                "Modules loaded, from the compiled-artifact cache (hit) or compiled (miss).",
                None,
                MetricType::Counter,
            )?;
            ConstCounter::new(s.modules_cached).encode(m.encode_family(&[("cache", "hit")])?)?;
            ConstCounter::new(s.modules_compiled).encode(m.encode_family(&[("cache", "miss")])?)?;
        }
        gauge(
            e,
            "reef_pool_instances",
            "Component instances live in the instance pool.",
            s.pool_instances,
        )?;
        gauge(
            e,
            "reef_pool_memories",
            "Linear memories live in the instance pool.",
            s.pool_memories,
        )?;
        gauge(
            e,
            "reef_warm_instances",
            "Idle task instances: kept for reuse by tasks with max_calls other than 1, or made ahead for tasks that get a fresh one.",
            s.warm_instances,
        )?;
        gauge(
            e,
            "reef_pool_capacity_instances",
            "Component instances the pool holds at most.",
            s.pool_capacity,
        )?;
        gauge(
            e,
            "reef_tasks_queued",
            "Tasks waiting for resources.",
            s.tasks_queued,
        )?;
        let (rss, shared) = memory();
        gauge(
            e,
            "reef_node_memory_rss_bytes",
            "Resident memory of the node process (includes touched arena pages).",
            rss,
        )?;
        gauge(
            e,
            "reef_node_memory_shared_bytes",
            "Resident shared pages of the node (the arena, mapped files).",
            shared,
        )?;
        Ok(())
    }
}

/// Resident and resident-shared bytes of this process, from /proc/self/statm.
fn memory() -> (u64, u64) {
    let Ok(statm) = std::fs::read_to_string("/proc/self/statm") else {
        return (0, 0);
    };
    let pages: Vec<u64> = statm
        .split_whitespace()
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(0) as u64;
    let field = |i: usize| pages.get(i).copied().unwrap_or(0) * page;
    (field(1), field(2))
}

/// The node's metrics (see the module documentation).
pub struct Metrics {
    /// Lineage kept and used by this node.
    pub lineage: LineageMetrics,
    /// `None`: metrics are off.
    live: Option<Live>,
    /// The series every task and method gets when metrics are off.
    off_task: Arc<TaskFn>,
    off_method: Arc<ActorMethod>,
}

/// The registry and its families (metrics on).
struct Live {
    registry: Registry,
    source: Arc<OnceLock<Source>>,
    tasks: TaskFamilies,
    task_fns: Bounded<TaskFn>,
    unknown_task: Arc<TaskFn>,
    other_task: Arc<TaskFn>,
    actors: ActorFamilies,
    actor_methods: Bounded<ActorMethod>,
    other_method: Arc<ActorMethod>,
    actor_starts: Counter,
    rpc_latency: HistogramFamily<RpcLabels>,
    rpc_status: Family<RpcStatusLabels, Counter>,
    rpc_methods: RwLock<HashMap<String, Arc<RpcMethod>>>,
    other_rpc: Arc<RpcMethod>,
}

struct ActorFamilies {
    calls: Family<MethodLabels, Counter>,
    latency: HistogramFamily<MethodLabels>,
    failed: Family<MethodFailLabels, Counter>,
}

impl ActorFamilies {
    fn series(&self, module: String, class: String, method: String) -> ActorMethod {
        let labels = MethodLabels {
            tenant: TENANT,
            module,
            class,
            method,
        };
        ActorMethod(Some(MethodSeries {
            calls: self.calls.get_or_create_owned(&labels),
            latency: self.latency.get_or_create_owned(&labels),
            failed: self.failed.clone(),
            labels,
        }))
    }
}

type KindLabel = [(&'static str, &'static str); 1];

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Metrics on: every series registered, served by [`Metrics::encode`].
    pub fn new() -> Self {
        let lineage = LineageMetrics::default();
        Metrics {
            live: Some(Live::new(&lineage)),
            lineage,
            off_task: Arc::new(TaskFn(None)),
            off_method: Arc::new(ActorMethod(None)),
        }
    }

    /// Metrics off (`--no-metrics`): nothing is registered or counted.
    pub fn off() -> Self {
        Metrics {
            live: None,
            lineage: LineageMetrics::default(),
            off_task: Arc::new(TaskFn(None)),
            off_method: Arc::new(ActorMethod(None)),
        }
    }

    /// Whether metrics are on (`/metrics` and the gRPC layer are only served then).
    pub fn is_on(&self) -> bool {
        self.live.is_some()
    }

    /// Where the values read at each scrape come from (set once, by `node.rs`).
    pub fn set_source(&self, source: impl Fn() -> Snapshot + Send + Sync + 'static) {
        if let Some(live) = &self.live {
            let _ = live.source.set(Box::new(source));
        }
    }

    /// The series of task `function` of `module` (`None`: not registered here).
    pub fn task(&self, module: Option<&Module>, hash: &str, function: &str) -> Arc<TaskFn> {
        match &self.live {
            Some(live) => live.task(module, hash, function),
            None => self.off_task.clone(),
        }
    }

    /// The series of method `method` of actor class `class` of `module`
    /// (checked by the caller: an actor's calls are checked when queued).
    pub fn actor_method(&self, module: &str, class: &str, method: &str) -> Arc<ActorMethod> {
        match &self.live {
            Some(live) => live.actor_method(module, class, method),
            None => self.off_method.clone(),
        }
    }

    /// An actor's instance was started.
    pub fn actor_started(&self) {
        if let Some(live) = &self.live {
            live.actor_starts.inc();
        }
    }

    /// The series of the gRPC method at `path` (`/package.Service/Method`);
    /// `None` when metrics are off.
    pub fn rpc(&self, path: &str) -> Option<Arc<RpcMethod>> {
        self.live.as_ref().map(|live| live.rpc(path))
    }

    /// The exposition, in the Prometheus text format (empty when off).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if let Some(live) = &self.live {
            // Writing to a String does not fail.
            let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &live.registry);
        }
        out
    }
}

impl Live {
    fn new(lineage: &LineageMetrics) -> Self {
        let mut registry = Registry::default();
        let r = &mut registry;
        let starts = Family::<KindLabel, Counter>::default();
        r.register(
            "reef_instance_starts",
            "Guest instances started (a task in a fresh one unless it reuses a kept one, max_calls; an actor keeps one).",
            starts.clone(),
        );
        let tasks = TaskFamilies {
            submitted: Family::default(),
            running: Family::default(),
            finished: Family::default(),
            failed: Family::default(),
            scheduling: Family::new_with_constructor(latency_buckets),
            run_time: Family::new_with_constructor(latency_buckets),
            instance_starts: starts.get_or_create_owned(&[("kind", "task")]),
        };
        r.register(
            "reef_tasks_submitted",
            "Tasks submitted to this node by its drivers and guests.",
            tasks.submitted.clone(),
        );
        r.register(
            "reef_tasks_running",
            "Tasks running on this node.",
            tasks.running.clone(),
        );
        r.register(
            "reef_tasks_finished",
            "Tasks that ran here and returned a value.",
            tasks.finished.clone(),
        );
        r.register(
            "reef_tasks_failed",
            "Tasks of this node that failed, by error code.",
            tasks.failed.clone(),
        );
        r.register(
            "reef_task_scheduling_delay_seconds",
            "From a task's arrival on this node to its start (waiting for arguments, then resources).",
            tasks.scheduling.clone(),
        );
        r.register(
            "reef_task_run_seconds",
            "Tasks' run time on this node: instance, call, output.",
            tasks.run_time.clone(),
        );
        let actors = ActorFamilies {
            calls: Family::default(),
            latency: Family::new_with_constructor(latency_buckets),
            failed: Family::default(),
        };
        r.register(
            "reef_actor_calls",
            "Actor calls served on this node.",
            actors.calls.clone(),
        );
        r.register(
            "reef_actor_call_seconds",
            "Actor calls' run time on this node.",
            actors.latency.clone(),
        );
        r.register(
            "reef_actor_calls_failed",
            "Actor calls served here that failed, by error code.",
            actors.failed.clone(),
        );
        let rpc_latency: HistogramFamily<RpcLabels> = Family::new_with_constructor(latency_buckets);
        let rpc_status = Family::<RpcStatusLabels, Counter>::default();
        r.register(
            "reef_rpc_requests",
            "gRPC requests served, by method and gRPC status code.",
            rpc_status.clone(),
        );
        r.register(
            "reef_rpc_seconds",
            "gRPC requests' latency to the response (to its start, for streams).",
            rpc_latency.clone(),
        );
        r.register(
            "reef_lineage_rebuilt",
            "Lost objects this node (their owner) rebuilt by running their task again.",
            lineage.rebuilt.clone(),
        );
        r.register(
            "reef_lineage_unrebuildable",
            "Lost objects owned here that could not be rebuilt (put, evicted, attempts exhausted).",
            lineage.unrebuildable.clone(),
        );
        r.register(
            "reef_lineage_evicted",
            "Lineage entries evicted by --lineage-bytes while their result still existed.",
            lineage.evicted.clone(),
        );
        r.register(
            "reef_lineage_entries",
            "Task specs kept to rebuild lost results.",
            lineage.entries.clone(),
        );
        r.register(
            "reef_lineage_bytes",
            "Bytes of lineage kept (bounded by --lineage-bytes).",
            lineage.bytes.clone(),
        );
        let source = Arc::new(OnceLock::new());
        r.register_collector(Box::new(SnapshotCollector(source.clone())));
        Live {
            registry,
            source,
            unknown_task: Arc::new(tasks.series(UNKNOWN.into(), UNKNOWN.into())),
            other_task: Arc::new(tasks.series(OTHER.into(), OTHER.into())),
            tasks,
            task_fns: Bounded::new(MAX_FUNCTIONS),
            other_method: Arc::new(actors.series(OTHER.into(), OTHER.into(), OTHER.into())),
            actors,
            actor_methods: Bounded::new(MAX_FUNCTIONS),
            actor_starts: starts.get_or_create_owned(&[("kind", "actor")]),
            other_rpc: Arc::new(RpcMethod::new(OTHER, &rpc_latency, &rpc_status)),
            rpc_latency,
            rpc_status,
            rpc_methods: Default::default(),
        }
    }

    /// The series of task `function` of `module` (`None`: not registered here).
    fn task(&self, module: Option<&Module>, hash: &str, function: &str) -> Arc<TaskFn> {
        let Some(module) = module else {
            return self.unknown_task.clone();
        };
        self.task_fns.get(
            hash,
            function,
            || module.info.tasks.iter().any(|t| t == function),
            |module, function| self.tasks.series(module, function),
            &self.other_task,
            &self.unknown_task,
        )
    }

    /// The series of method `method` of actor class `class` of `module`
    /// (checked by the caller: an actor's calls are checked when queued).
    fn actor_method(&self, module: &str, class: &str, method: &str) -> Arc<ActorMethod> {
        self.actor_methods.get(
            module,
            &format!("{class}.{method}"),
            || true,
            |module, _| {
                self.actors
                    .series(module, class.to_string(), method.to_string())
            },
            &self.other_method,
            &self.other_method,
        )
    }

    /// The series of the gRPC method at `path` (`/package.Service/Method`).
    fn rpc(&self, path: &str) -> Arc<RpcMethod> {
        if let Some(m) = self.rpc_methods.read().unwrap().get(path) {
            return m.clone();
        }
        let plausible = path.len() <= 96
            && path.starts_with("/reef.")
            && path
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'/' || b == b'_');
        if !plausible {
            return self.other_rpc.clone();
        }
        let mut methods = self.rpc_methods.write().unwrap();
        if methods.len() >= MAX_RPC_METHODS {
            return self.other_rpc.clone();
        }
        methods
            .entry(path.to_string())
            .or_insert_with(|| Arc::new(RpcMethod::new(path, &self.rpc_latency, &self.rpc_status)))
            .clone()
    }
}

/// The `Content-Type` of [`Metrics::encode`]'s output.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_counts_nothing_and_encodes_nothing() {
        let off = Metrics::off();
        assert!(!off.is_on());
        let task = off.task(None, "abcdef", "f");
        task.submitted();
        task.started(Duration::from_millis(1));
        task.stopped(Duration::from_millis(1));
        task.done(Some(ErrorCode::GuestPanic));
        off.actor_method("abcdef", "C", "m")
            .called(Duration::from_millis(1), None);
        off.actor_started();
        off.set_source(Snapshot::default);
        assert!(off.rpc("/reef.v1.Node/List").is_none());
        assert_eq!(off.encode(), "");

        let on = Metrics::new();
        assert!(on.is_on());
        on.task(None, "abcdef", "f").submitted();
        assert!(on.rpc("/reef.v1.Node/List").is_some());
        let text = on.encode();
        assert!(
            text.contains(
                r#"reef_tasks_submitted_total{tenant="default",module="unknown",function="unknown"} 1"#
            ),
            "{text}"
        );
    }
}
