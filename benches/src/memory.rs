//! Figure 6: the node memory that 16 concurrent guest readers of one 64 MiB
//! object add, through views and (for comparison) through copies.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use reef::{Cluster, Module, ObjectRef};

use crate::harness::{touched_buffer, ChildNode, MIB};
use crate::report::{Bound, Figure, Unit};

pub const READERS: usize = 16;
const OBJECT: usize = 64 * MIB as usize;
const TARGET_MIB: f64 = 16.0;
/// Runs per reader kind; the figure is the highest peak seen.
const RUNS: usize = 3;
/// How long each reader keeps its view or copy.
const HOLD_MS: u64 = 300;

/// **Node memory added by 16 concurrent readers.** A node child process with
/// 16 CPUs (so all 16 tasks are admitted at once) holds one 64 MiB object
/// put by the driver. 16 `hold_view(obj, ms)` tasks each map it, read every
/// page and keep the view for `HOLD_MS` (the guest sleeps, which yields, so
/// all 16 are alive together; polling the node's status checks that).
/// Meanwhile a sampler thread reads the node's private memory about every
/// millisecond; the figure is its peak minus its value just before the tasks
/// (highest of `RUNS` runs). The copy line does the same with `hold_copy`,
/// which copies the object in with the host `get` instead.
///
/// Private memory is USS plus page tables, read as `RssAnon + VmPTE` from
/// `/proc/<pid>/status` (~0.1 ms a read). `smaps_rollup`'s
/// `Private_Clean + Private_Dirty` gives the same USS deltas here but takes
/// ~20 ms a read on a node (the walk covers the pooling allocator's TiBs of
/// reservations) and holds the node's `mmap_lock` meanwhile, so it only
/// feeds a coarse PSS peak, logged at info level. PSS is no measure of what
/// views add: it charges the node 16/17 of every arena page that 16 views
/// (and the driver's mapping) share, though no page was added.
pub async fn concurrent_readers() -> Result<()> {
    let peaks = peak_mib(&["hold_view", "hold_copy"]).await?;
    for (task, peak) in ["hold_view", "hold_copy"].into_iter().zip(peaks) {
        let copy = task == "hold_copy";
        let name = format!(
            "node memory added by {READERS} concurrent guest readers of one 64 MiB object \
             ({}{task}, peak USS + page tables)",
            if copy { "copy: " } else { "" }
        );
        let bound = Bound::AtMost(TARGET_MIB);
        match copy {
            false => Figure::new(name, peak, Unit::MiB, bound),
            true => Figure::alternative(name, peak, Unit::MiB, bound),
        }
        .print();
    }
    Ok(())
}

/// The node memory added (MiB, highest of `RUNS` runs) by 16 concurrent
/// readers running each of `tasks` (`hold_view`, `hold_copy`), measured as
/// [`concurrent_readers`] describes.
pub async fn peak_mib(tasks: &[&str]) -> Result<Vec<f64>> {
    let node = ChildNode::start(&["--num-cpus", "16", "--object-store-memory", "512MiB"])?;
    crate::harness::wait_steady(&crate::harness::arena_of(&node.address)?).await?;
    let cluster = node.connect().await?;
    let demo = cluster.register_file(crate::harness::guest("demo")).await?;
    ensure!(
        demo.tasks.iter().any(|t| t == "hold_view"),
        "the demo guest has no hold_view task (run scripts/build-guests.sh)"
    );
    let obj = cluster.put_bytes(&touched_buffer(OBJECT)).await?;

    // Warm the pool slots, runtime threads and allocator before any baseline.
    for task in tasks {
        readers(&cluster, &demo, task, &obj).await?;
    }

    let pid = node.pid();
    let mut peaks = Vec::with_capacity(tasks.len());
    for &task in tasks {
        let mut peak_kib = 0;
        for _ in 0..RUNS {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let (private, pss) = (private_kib(pid)?, pss_kib(pid)?);
            let fast = Sampler::start(pid, private_kib, Duration::from_millis(1));
            let slow = Sampler::start(pid, pss_kib, Duration::ZERO);
            let (wall, running) = readers(&cluster, &demo, task, &obj).await?;
            let (max_private, samples) = fast.stop();
            let (max_pss, pss_samples) = slow.stop();
            tracing::info!(
                task,
                wall_ms = wall.as_millis() as u64,
                running,
                samples,
                private_mib = mib(max_private.saturating_sub(private)),
                pss_samples,
                pss_mib = mib(max_pss.saturating_sub(pss)),
                "node memory added (peak - baseline)"
            );
            if running < READERS {
                tracing::warn!(
                    running,
                    "the {READERS} readers were not all seen running at once"
                );
            }
            peak_kib = peak_kib.max(max_private.saturating_sub(private));
        }
        peaks.push(mib(peak_kib));
    }
    Ok(peaks)
}

/// Submits the 16 readers at once, waits for all of them and checks what
/// they read. Returns the wall time and the most readers the node reported
/// running at once (polled from its status every 20 ms).
async fn readers(
    cluster: &Cluster,
    demo: &Module,
    task: &str,
    obj: &ObjectRef,
) -> Result<(Duration, usize)> {
    let start = Instant::now();
    let refs = (0..READERS)
        .map(|_| {
            cluster
                .task(demo, task)
                .arg(obj)
                .arg(HOLD_MS)
                .memory_limit(256 * MIB)
                .submit()
        })
        .collect::<reef::Result<Vec<_>>>()?;
    let mut most_running = 0;
    let poll = async {
        loop {
            if let Ok(status) = cluster.status().await {
                let running = status.tasks.iter().filter(|t| t.state == "running");
                most_running = most_running.max(running.count());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let sums: Vec<u64> = tokio::select! {
        sums = cluster.get_many(&refs) => sums?,
        never = poll => never,
    };
    let wall = start.elapsed();
    // One 0xa5 byte per 4 KiB page.
    let expected = (OBJECT as u64 / 4096) * 0xa5;
    ensure!(
        sums.iter().all(|&s| s == expected),
        "a reader read wrong bytes"
    );
    Ok((wall, most_running))
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// A `kB` field of a `/proc` file.
fn field_kib(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Private memory of a process: anonymous pages plus page tables, in KiB.
fn private_kib(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .context("reading /proc/<pid>/status")?;
    Ok(field_kib(&status, "RssAnon:") + field_kib(&status, "VmPTE:"))
}

/// Proportional set size of a process, in KiB.
fn pss_kib(pid: u32) -> Result<u64> {
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
        .context("reading /proc/<pid>/smaps_rollup")?;
    Ok(field_kib(&rollup, "Pss:"))
}

/// A thread reading one figure of a process every `period`, keeping its maximum.
struct Sampler {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<(u64, usize)>,
}

impl Sampler {
    fn start(pid: u32, read: fn(u32) -> Result<u64>, period: Duration) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let (mut max, mut samples) = (0, 0);
            while !flag.load(Ordering::Relaxed) {
                if let Ok(v) = read(pid) {
                    max = max.max(v);
                    samples += 1;
                }
                std::thread::sleep(period);
            }
            (max, samples)
        });
        Sampler { stop, thread }
    }

    /// The maximum and the number of samples.
    fn stop(self) -> (u64, usize) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("sampler thread")
    }
}
