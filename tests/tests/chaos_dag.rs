//! Chaos: a 10,000-task DAG over four real `host` processes while a worker
//! holding some of it is SIGKILLed twice while the DAG is being submitted
//! (frozen first, so it holds work whatever the machine's speed), then
//! every 3 s and at 0.1 %, 40 % and 70 % of the results (so a fast machine
//! cannot finish before the chaos), and a fresh one joins in its place each
//! time. Tasks of a killed node are retried elsewhere, and intermediate objects that died
//! with it are rebuilt from lineage when a dependent task needs them: every
//! result must come out right.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reef::{Cluster, ObjectRef};
use reef_testkit::cluster3::NODE_TIMEOUT;
use reef_testkit::{guest, HostProcess};

/// Elements of each range object: 8 KB, above the test nodes' 4 KiB inline
/// threshold, so intermediate objects stay on the node that made them.
const N: u64 = 1000;
/// `scale` + `sum` pairs per range: 1 + 2 × 8 = 17 tasks per group.
const FANOUT: u64 = 8;
const GROUPS: u64 = 589; // 10,013 tasks
const KILL_EVERY: Duration = Duration::from_secs(3);
/// Shares of the results collected at which a worker is killed whatever the
/// clock says: the kills are tied to progress, not to this machine's speed.
/// The first comes with the first results, while nearly all the DAG is in
/// flight (the whole DAG can take under a second: a later first kill could
/// land after the work it was meant to hit).
const KILL_AT_PROGRESS: [f64; 3] = [0.001, 0.4, 0.7];
/// Every kill fails the attempts queued on the victim (a third of the
/// DAG's waiting tasks): a task may be hit by several.
const RETRIES: u32 = 20;
/// The whole DAG's deadline (the test's bound).
const DEADLINE: Duration = Duration::from_secs(75);

const COMMON: &[&str] = &[
    "--num-cpus",
    "2",
    "--object-store-memory",
    "128MiB",
    "--inline-threshold",
    "4KiB",
];

/// A small deterministic generator (xorshift), so a failing run can be
/// replayed with the seed it printed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

/// Submits `groups` of the DAG through `driver`: per group
/// `r = make_range(N)`, then `sum(scale(r, j))` for j in 1..=FANOUT. Only
/// the sums are kept.
fn submit_groups(
    driver: &Cluster,
    m: &reef::Module,
    groups: std::ops::Range<u64>,
) -> Vec<(u64, ObjectRef)> {
    let mut sums = Vec::new();
    for _ in groups {
        let r = driver
            .task(m, "make_range")
            .arg(N)
            .max_retries(RETRIES)
            .submit()
            .unwrap();
        for j in 1..=FANOUT {
            let s = driver
                .task(m, "scale")
                .arg(&r)
                .arg(j as f64)
                .max_retries(RETRIES)
                .submit()
                .unwrap();
            let t = driver
                .task(m, "sum")
                .arg(&s)
                .max_retries(RETRIES)
                .submit()
                .unwrap();
            sums.push((j, t));
        }
    }
    sums
}

#[tokio::test]
async fn a_dag_survives_workers_killed_every_few_seconds() {
    let timeout = NODE_TIMEOUT.as_millis().to_string();
    let mut head_args = vec![
        "--heartbeat-ms",
        "200",
        "--node-timeout-ms",
        timeout.as_str(),
    ];
    // The head runs none of the DAG (no CPUs): every task runs on a worker
    // that may be killed. With CPUs of its own, a head can run a fast DAG
    // (under a second) alone, and the kills then touch nothing.
    head_args.extend_from_slice(&COMMON[2..]);
    head_args.extend_from_slice(&["--num-cpus", "0"]);
    let mut dirs = vec![tempfile::tempdir().unwrap()];
    let head = HostProcess::start(dirs[0].path(), &head_args);
    let mut workers = Vec::new();
    for _ in 0..3 {
        dirs.push(tempfile::tempdir().unwrap());
        workers.push(HostProcess::start_worker(
            dirs.last().unwrap().path(),
            &head,
            COMMON,
        ));
    }
    let driver = head.connect().await;
    let m = driver.register_file(guest("dag")).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while driver.status().await.unwrap().nodes.len() < 4 {
        assert!(Instant::now() < deadline, "the workers did not join");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let seed = 0x5eed_0000_0000_0001 ^ std::process::id() as u64;
    eprintln!("chaos seed {seed:#x}");
    let mut rng = Rng(seed);
    let mut kills = 0;
    let started = Instant::now();
    // The DAG goes out in three slices. After each of the first two has
    // reached the head, a random worker is frozen (SIGSTOP) while the head
    // keeps forwarding it work, then SIGKILLed: whatever it held is lost,
    // however fast the machine ran the rest (a slice runs in ~0.1 s, under
    // the status heartbeat, so "a worker the status shows busy" can miss).
    let mut sums = Vec::new();
    for slice in 0..3 {
        sums.extend(submit_groups(
            &driver,
            &m,
            slice * GROUPS / 3..(slice + 1) * GROUPS / 3,
        ));
        if slice == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        let victim = rng.below(workers.len());
        // The shell's builtin `kill` (no procps needed).
        let stopped = std::process::Command::new("sh")
            .args(["-c", &format!("kill -STOP {}", workers[victim].pid())])
            .status()
            .unwrap();
        assert!(stopped.success(), "kill -STOP: {stopped}");
        tokio::time::sleep(Duration::from_millis(200)).await;
        workers[victim].kill().unwrap();
        kills += 1;
        dirs.push(tempfile::tempdir().unwrap());
        workers[victim] = HostProcess::start_worker(dirs.last().unwrap().path(), &head, COMMON);
    }
    let total = sums.len();
    let collected = Arc::new(AtomicUsize::new(0));
    let collect = {
        let driver = driver.clone();
        let collected = collected.clone();
        tokio::spawn(async move {
            let mut wrong = Vec::new();
            for (j, t) in &sums {
                let want = *j as f64 * (N * (N - 1) / 2) as f64;
                match driver.get::<f64>(t).await {
                    Ok(v) if v == want => {}
                    other => wrong.push(format!("sum {:#x} of scale {j}: {other:?}", t.id())),
                }
                collected.fetch_add(1, Ordering::Relaxed);
            }
            (sums.len(), wrong)
        })
    };
    let mut next_kill = Instant::now() + KILL_EVERY;
    let mut milestones = KILL_AT_PROGRESS.iter().peekable();
    while !collect.is_finished() {
        assert!(
            started.elapsed() < DEADLINE,
            "the DAG is not done after {DEADLINE:?} ({kills} kills)"
        );
        let progress = collected.load(Ordering::Relaxed) as f64 / total as f64;
        let milestone = milestones.next_if(|&&at| progress >= at).is_some();
        if milestone || Instant::now() >= next_kill {
            // A worker holding some of the DAG's work (any, when the status
            // cannot say): a kill of an idle worker would test nothing.
            let busy: Vec<usize> = match driver.status().await {
                Ok(status) => workers
                    .iter()
                    .enumerate()
                    .filter(|(_, w)| {
                        status.nodes.iter().any(|n| {
                            n.address == w.address && n.running_tasks + n.pending_tasks > 0
                        })
                    })
                    .map(|(i, _)| i)
                    .collect(),
                Err(_) => Vec::new(),
            };
            let victim = match busy.is_empty() {
                true => rng.below(workers.len()),
                false => busy[rng.below(busy.len())],
            };
            workers[victim].kill().unwrap();
            kills += 1;
            dirs.push(tempfile::tempdir().unwrap());
            workers[victim] = HostProcess::start_worker(dirs.last().unwrap().path(), &head, COMMON);
            next_kill = Instant::now() + KILL_EVERY;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (count, wrong) = collect.await.unwrap();
    let log = head.log();
    let retried = log.lines().filter(|l| l.contains("retrying task")).count();
    let rebuilt = log
        .lines()
        .filter(|l| l.contains("rebuilding lost object"))
        .count();
    eprintln!(
        "{count} sums of a {} -task DAG in {:?} with {kills} workers killed: \
         {} wrong, {retried} attempts retried, {rebuilt} objects rebuilt",
        GROUPS * (1 + 2 * FANOUT),
        started.elapsed(),
        wrong.len()
    );
    if let Some(first) = wrong.first() {
        print_log_lines_naming_objects(first, dirs.iter().map(|d| d.path()));
    }
    assert!(
        wrong.is_empty(),
        "{} wrong, first: {}",
        wrong.len(),
        wrong[0]
    );
    // The owner (the head: the driver submitted there) retried attempts
    // lost with a node or rebuilt objects lost with one: the kills cost
    // work, and the results above are right anyway.
    assert!(
        retried + rebuilt > 0,
        "{kills} kills and nothing was retried or rebuilt: the chaos missed the DAG"
    );
}

/// For a failed run: every node's log lines (killed nodes' too) that name an
/// object id found in `message`, so the object's history can be read.
fn print_log_lines_naming_objects<'a>(
    message: &str,
    dirs: impl Iterator<Item = &'a std::path::Path>,
) {
    let ids: Vec<&str> = message
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| w.starts_with("0x") && w.len() > 4)
        .collect();
    for dir in dirs {
        let log = std::fs::read_to_string(dir.join("node.log")).unwrap_or_default();
        eprintln!("--- {} ---", dir.display());
        for line in log.lines().filter(|l| ids.iter().any(|id| l.contains(id))) {
            eprintln!("{line}");
        }
    }
}
