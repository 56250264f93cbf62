//! The tenant-isolation group: what tenant B's flood does to tenant A on a
//! shared node, and how two flooding tenants share it by weight (see
//! docs/security.md#fair-sharing).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use reef::{Cluster, ConnectOptions, ErrorCode, Module, ObjectRef};

use crate::harness::{self, ChildNode};
use crate::report::{percentile_us, Bound, Figure, Unit};

/// B's drivers and the tasks each submits.
pub const DRIVERS: usize = 4;
pub const TASKS_PER_DRIVER: usize = 20_000;
/// The tasks B's guest submits from inside one task (`nested.fan_out_add`).
pub const FORK_BOMB: u64 = 65_536;
/// A's round trips: untimed, then timed.
const WARMUP: usize = 200;
const CALLS: usize = 1_000;
/// A's weight against B's 1 in the share figure, and the tasks each submits.
const WEIGHT_A: f64 = 3.0;
const SHARE_TASKS_A: usize = 240;
const SHARE_TASK_MS: u64 = 10;

/// **Tenant isolation.** One node (`--num-cpus 2`), tenants `a` (weight 3)
/// and `b` (weight 1), measured once the node's arena is steady (its
/// rebuild into 2 MiB pages took one of the two cores for ~5 s after the
/// node started, under the idle figures and the flood's first seconds).
///
/// 1. A's sync round trip (`noop`, submit to decoded result), p50 and p99
///    over `CALLS` calls on the idle node.
/// 2. The same while B floods the node: `DRIVERS` drivers of B each submit
///    `TASKS_PER_DRIVER` `noop` tasks at once, and a task of B submits
///    `FORK_BOMB` tasks from inside its guest (`nested.fan_out_add`). A's
///    calls start once B's submissions are in and are timed only while B's
///    flood lasts (their count is logged); targets: 3x the idle figures.
/// 3. A's share: A and B each flood the node with equal tasks
///    (`pause(SHARE_TASK_MS)`, each holding one CPU), B first; when A's
///    `SHARE_TASKS_A` are done, A's share of the tasks both finished;
///    target: within 10 % of its weight's share (3 / 4 = 75 %).
pub async fn figures() -> Result<()> {
    let node = ChildNode::start(&["--num-cpus", "2", "--object-store-memory", "512MiB"])?;
    harness::wait_steady(&harness::arena_of(&node.address)?).await?;
    let tokens = tempfile::Builder::new()
        .prefix("reef-bench-tenants-")
        .tempdir()?;
    let a_token = add_tenant(&node, "a", WEIGHT_A, tokens.path())?;
    let b_token = add_tenant(&node, "b", 1.0, tokens.path())?;
    let a = connect(&node, &a_token).await?;
    let a_demo = a.register_file(harness::guest("demo")).await?;
    let a_nested = a.register_file(harness::guest("nested")).await?;
    wait_for_quotas(&a, &a_demo).await?;

    let idle = sync_round_trips(&a, &a_demo, WARMUP, CALLS, None).await?;
    let idle_p50 = percentile_us(&idle, 0.5);
    let idle_p99 = percentile_us(&idle, 0.99);
    Figure::new(
        "tenant A sync round trip idle (p50)",
        idle_p50,
        Unit::Micros,
        Bound::Report,
    )
    .print();
    Figure::new(
        "tenant A sync round trip idle (p99)",
        idle_p99,
        Unit::Micros,
        Bound::Report,
    )
    .print();

    // B's drivers run in a runtime of their own (their own threads), as
    // they would in processes of their own: A's driver does not wait
    // behind theirs in this process.
    // Before fair sharing every call waited in one line: a call of B's own,
    // submitted as A's first, shows what A's would have waited.
    let b_probe = connect(&node, &b_token).await?;
    let b_probe_demo = b_probe.register_file(harness::guest("demo")).await?;
    let mut flood = Flood::start(node.address.clone(), b_token.clone());
    flood.submitted().await?;
    let in_b_line = tokio::spawn(async move {
        let start = Instant::now();
        let r = b_probe.task(&b_probe_demo, "noop").submit()?;
        b_probe.get::<()>(&r).await?;
        Ok::<_, anyhow::Error>(start.elapsed())
    });
    let under = sync_round_trips(&a, &a_demo, 0, CALLS, Some(flood.flooding.as_ref())).await?;
    let measured_under_flood = flood.flooding.load(Ordering::SeqCst);
    let flood_secs = flood.finished().await?;
    ensure!(!under.is_empty(), "B's flood ended before A's first call");
    tracing::info!(
        idle_p90 = percentile_us(&idle, 0.9),
        idle_max = percentile_us(&idle, 1.0),
        p90 = percentile_us(&under, 0.9),
        p95 = percentile_us(&under, 0.95),
        max = percentile_us(&under, 1.0),
        calls = under.len(),
        all_under_flood = measured_under_flood,
        flood_secs,
        "tenant A's round trips under B's flood"
    );
    let p50 = percentile_us(&under, 0.5);
    let p99 = percentile_us(&under, 0.99);
    Figure::new(
        format!(
            "tenant A p50 under B's flood ({} calls; target 3x idle p50)",
            under.len()
        ),
        p50,
        Unit::Micros,
        Bound::AtMost(3.0 * idle_p50),
    )
    .print();
    Figure::new(
        format!(
            "tenant A p99 under B's flood ({} calls; target 3x idle p99)",
            under.len()
        ),
        p99,
        Unit::Micros,
        Bound::AtMost(3.0 * idle_p99),
    )
    .print();
    Figure::new(
        "a call behind B's flood in B's own line (first come, first served: every call before fair sharing)",
        in_b_line.await??.as_secs_f64() * 1e3,
        Unit::Millis,
        Bound::Report,
    )
    .print();
    let b_tasks = DRIVERS * TASKS_PER_DRIVER + FORK_BOMB as usize + 1;
    Figure::new(
        format!("tenant B flood ({b_tasks} tasks: {DRIVERS} drivers x {TASKS_PER_DRIVER} and a guest's {FORK_BOMB})"),
        b_tasks as f64 / flood_secs,
        Unit::TasksPerSec,
        Bound::Report,
    )
    .print();

    let b = connect(&node, &b_token).await?;
    let b_nested = b.register_file(harness::guest("nested")).await?;
    let share = share_of_a(&a, &a_nested, &b, &b_nested).await?;
    let expected = WEIGHT_A / (WEIGHT_A + 1.0);
    Figure::new(
        format!(
            "tenant A share of the node, both flooding (weights {WEIGHT_A}:1, {:.0} % expected)",
            expected * 100.0
        ),
        share * 100.0,
        Unit::Percent,
        Bound::Report,
    )
    .print();
    Figure::new(
        "tenant A share off its weight's share",
        (share / expected - 1.0).abs() * 100.0,
        Unit::Percent,
        Bound::AtMost(10.0),
    )
    .print();
    Ok(())
}

/// `host tenant add NAME --weight W --max-cpus 2` as the admin; the token file.
fn add_tenant(node: &ChildNode, name: &str, weight: f64, dir: &Path) -> Result<PathBuf> {
    let output = dir.join(format!("{name}.token"));
    let out = Command::new(reef_testkit::host_bin())
        .args(["tenant", "add", name, "--max-cpus", "2", "--weight"])
        .arg(weight.to_string())
        .arg("--output")
        .arg(&output)
        .arg("--address")
        .arg(&node.address)
        .arg("--token-file")
        .arg(node.admin_token_file())
        .output()
        .context("running host tenant add")?;
    if !out.status.success() {
        bail!(
            "host tenant add {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(output)
}

async fn connect(node: &ChildNode, token_file: &Path) -> Result<Cluster> {
    let options = ConnectOptions::default().token_file(token_file)?;
    Ok(Cluster::connect_with(&node.address, options).await?)
}

/// Waits until the node knows the tenant's quotas, and so its weight (the
/// same record of the cluster view): a 3-CPU task is refused by the
/// tenant's 2-CPU quota rather than as infeasible.
async fn wait_for_quotas(cluster: &Cluster, demo: &Module) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = cluster.task(demo, "noop").num_cpus(3.0).submit()?;
        match cluster.get::<()>(&r).await {
            Err(e) if e.code == ErrorCode::QuotaExceeded => return Ok(()),
            other if Instant::now() > deadline => {
                bail!("the node never learned the tenants' quotas: {other:?}")
            }
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// Sync `noop` round trips of `cluster`: `warmup` untimed, then up to
/// `calls` timed, stopping early when `while_set` is cleared.
async fn sync_round_trips(
    cluster: &Cluster,
    demo: &Module,
    warmup: usize,
    calls: usize,
    while_set: Option<&AtomicBool>,
) -> Result<Vec<Duration>> {
    let mut samples = Vec::with_capacity(calls);
    for i in 0..warmup + calls {
        if while_set.is_some_and(|f| !f.load(Ordering::SeqCst)) {
            break;
        }
        let start = Instant::now();
        let r = cluster.task(demo, "noop").submit()?;
        cluster.get::<()>(&r).await?;
        if i >= warmup {
            samples.push(start.elapsed());
        }
    }
    Ok(samples)
}

/// B's flood, on a thread and runtime of its own.
struct Flood {
    /// Answered once every submission is in (each driver's session
    /// answered a wait for its last submission).
    submitted: Option<tokio::sync::oneshot::Receiver<Result<()>>>,
    /// Cleared when the flood's last result is in (or it failed).
    flooding: Arc<AtomicBool>,
    /// The time from the first submission to the last result, in s.
    thread: Option<std::thread::JoinHandle<Result<f64>>>,
}

impl Flood {
    fn start(address: String, token: PathBuf) -> Flood {
        let flooding = Arc::new(AtomicBool::new(true));
        let (tx, rx) = tokio::sync::oneshot::channel();
        let flag = flooding.clone();
        let thread = std::thread::spawn(move || {
            let result = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .map_err(anyhow::Error::from)
                .and_then(|rt| rt.block_on(flood(&address, &token, tx)));
            flag.store(false, Ordering::SeqCst);
            result
        });
        Flood {
            submitted: Some(rx),
            flooding,
            thread: Some(thread),
        }
    }

    async fn submitted(&mut self) -> Result<()> {
        let rx = self.submitted.take().context("waited twice")?;
        match rx.await {
            Ok(result) => result,
            Err(_) => Err(self.finished().await.err().unwrap_or_else(|| {
                anyhow::anyhow!("B's flood ended before its submissions were in")
            })),
        }
    }

    async fn finished(&mut self) -> Result<f64> {
        let thread = self.thread.take().context("waited twice")?;
        tokio::task::spawn_blocking(move || thread.join())
            .await?
            .map_err(|_| anyhow::anyhow!("B's flood thread panicked"))?
    }
}

/// B's flood: `DRIVERS` drivers submit `TASKS_PER_DRIVER` `noop` tasks
/// each and a task submits `FORK_BOMB` from its guest; `submitted` is told
/// once all are in. The time from the first submission to the last result.
async fn flood(
    address: &str,
    token: &Path,
    submitted: tokio::sync::oneshot::Sender<Result<()>>,
) -> Result<f64> {
    let mut b = Vec::with_capacity(DRIVERS);
    for _ in 0..DRIVERS {
        let options = ConnectOptions::default().token_file(token)?;
        b.push(Cluster::connect_with(address, options).await?);
    }
    let demo = b[0].register_file(harness::guest("demo")).await?;
    let nested = b[0].register_file(harness::guest("nested")).await?;
    wait_for_quotas(&b[0], &demo).await?;
    let start = Instant::now();
    let bomb = b[0].task(&nested, "fan_out_add").arg(FORK_BOMB).submit()?;
    let mut batches: Vec<Vec<ObjectRef>> = Vec::with_capacity(b.len());
    for driver in &b {
        let refs = (0..TASKS_PER_DRIVER)
            .map(|_| driver.task(&demo, "noop").submit())
            .collect::<reef::Result<Vec<ObjectRef>>>()?;
        batches.push(refs);
    }
    // A wait for each driver's last task, answered after the node read
    // every submission before it (a wait for no object is answered by the
    // driver itself, before the node read anything); its zero timeout goes
    // to the node as 1 ms, at most that long.
    for (driver, refs) in b.iter().zip(&batches) {
        driver
            .wait(&refs[refs.len() - 1..], 1, Some(Duration::ZERO))
            .await?;
    }
    let _ = submitted.send(Ok(()));
    let waits: Vec<_> = b
        .iter()
        .zip(batches)
        .map(|(driver, refs)| {
            let driver = driver.clone();
            tokio::spawn(async move { driver.get_many::<()>(&refs).await.map(|v| v.len()) })
        })
        .collect();
    let sum: f64 = b[0].get(&bomb).await?;
    let n = FORK_BOMB as f64;
    ensure!(sum == n * (n + 1.0) / 2.0, "the fork bomb's sum is {sum}");
    for w in waits {
        ensure!(
            w.await?? == TASKS_PER_DRIVER,
            "a result of B's flood is missing"
        );
    }
    Ok(start.elapsed().as_secs_f64())
}

/// A's share of the tasks finished while A and B both flood the node with
/// equal tasks (B's submitted first).
async fn share_of_a(a: &Cluster, a_nested: &Module, b: &Cluster, b_nested: &Module) -> Result<f64> {
    let pause = |c: &Cluster, m: &Module, n: usize| {
        (0..n)
            .map(|i| c.task(m, "pause").arg(SHARE_TASK_MS).arg(i as f64).submit())
            .collect::<reef::Result<Vec<ObjectRef>>>()
    };
    let b_refs = pause(b, b_nested, SHARE_TASKS_A)?;
    b.wait(&[], 0, None).await?;
    let a_refs = pause(a, a_nested, SHARE_TASKS_A)?;
    let a_done: Vec<f64> = a.get_many(&a_refs).await?;
    let (b_ready, _) = b.wait(&b_refs, b_refs.len(), Some(Duration::ZERO)).await?;
    let (a_n, b_n) = (a_done.len() as f64, b_ready.len() as f64);
    // B's remaining tasks are left to finish (the node stops with the bench).
    Ok(a_n / (a_n + b_n))
}
