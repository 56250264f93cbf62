//! Task retries against real `host` processes: a worker SIGKILLed under a
//! few hundred tasks (retried elsewhere, or failed with NODE_DIED when
//! retries are off), and guest failures retried only when
//! `retry_exceptions` says so.

use std::time::{Duration, Instant};

use reef::{Cluster, ErrorCode, Module, ObjectRef, RetryExceptions};
use reef_testkit::cluster3::{cluster3, Cluster3, NODE_TIMEOUT};
use reef_testkit::{guest, HostProcess};
use tempfile::tempdir;

const TASKS: usize = 300;
/// How long each task sleeps: long enough that the workers have work queued
/// when one is killed, short enough for a quick test.
const PAUSE_MS: u64 = 20;

/// The head's view of a worker's load (running + queued), from heartbeats.
async fn load_of(driver: &Cluster, node: &HostProcess) -> u64 {
    let status = driver.status().await.unwrap();
    status
        .nodes
        .iter()
        .find(|n| n.address == node.address)
        .map_or(0, |n| n.running_tasks + n.pending_tasks)
}

/// Submits `TASKS` sleeping tasks through the head (they spill to the
/// workers), SIGKILLs the busier worker once it has work, and waits for every
/// result: (values of the tasks that succeeded, errors of the others, time
/// from the kill to the last result).
async fn kill_a_worker_under_load(
    c: &mut Cluster3,
    max_retries: Option<u32>,
) -> (Vec<(usize, f64)>, Vec<reef::Error>, Duration) {
    let driver = c.head.connect().await;
    let m = driver.register_file(guest("nested")).await.unwrap();
    let refs: Vec<ObjectRef> = (0..TASKS)
        .map(|i| {
            let task = driver.task(&m, "pause").arg(PAUSE_MS).arg(i as f64);
            match max_retries {
                Some(n) => task.max_retries(n),
                None => task,
            }
            .submit()
            .unwrap()
        })
        .collect();
    // Kill the worker with the most work once the head sees its load.
    let deadline = Instant::now() + Duration::from_secs(10);
    let victim = loop {
        let (a, b) = (load_of(&driver, &c.a).await, load_of(&driver, &c.b).await);
        if a.max(b) >= 10 {
            break if a >= b { &mut c.a } else { &mut c.b };
        }
        assert!(Instant::now() < deadline, "no worker got work: {a} {b}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    victim.kill().unwrap();
    let killed = Instant::now();
    let mut values = Vec::new();
    let mut errors = Vec::new();
    let wait = NODE_TIMEOUT + Duration::from_secs(40);
    for (i, r) in refs.iter().enumerate() {
        match tokio::time::timeout(wait, driver.get::<f64>(r)).await {
            Ok(Ok(v)) => values.push((i, v)),
            Ok(Err(e)) => errors.push(e),
            Err(_) => panic!("task {i} still pending after {wait:?}"),
        }
    }
    (values, errors, killed.elapsed())
}

#[tokio::test]
async fn tasks_of_a_killed_worker_are_retried_elsewhere() {
    let mut c = cluster3().await;
    let (values, errors, recovery) = kill_a_worker_under_load(&mut c, None).await;
    eprintln!(
        "worker killed under {TASKS} tasks: {} correct, {} failed, all done {recovery:?} after the kill \
         (node timeout {NODE_TIMEOUT:?})",
        values.iter().filter(|(i, v)| *v == *i as f64).count(),
        errors.len()
    );
    assert!(
        errors.is_empty(),
        "{} failed, first: {}",
        errors.len(),
        errors[0]
    );
    for (i, v) in &values {
        assert_eq!(*v, *i as f64, "task {i}");
    }
    assert_eq!(values.len(), TASKS);
    // Not vacuous: the head did run attempts again, and logged why.
    let log = c.head.log();
    let retries: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("retrying task"))
        .collect();
    assert!(!retries.is_empty(), "no task was retried:\n{log}");
    // Each names the attempt that failed (1 to 3 with the default 3
    // retries) and its cause.
    let attempt = |l: &str| -> Option<u32> {
        let rest = l.split("attempt=").nth(1)?;
        rest.split(|c: char| !c.is_ascii_digit())
            .next()?
            .parse()
            .ok()
    };
    assert!(
        retries
            .iter()
            .all(|l| matches!(attempt(l), Some(1..=3)) && l.contains("NODE_DIED")),
        "{retries:?}"
    );
}

#[tokio::test]
async fn without_retries_the_killed_workers_tasks_fail_with_node_died() {
    let mut c = cluster3().await;
    let (values, errors, _) = kill_a_worker_under_load(&mut c, Some(0)).await;
    eprintln!(
        "worker killed under {TASKS} tasks, max_retries 0: {} correct, {} failed",
        values.iter().filter(|(i, v)| *v == *i as f64).count(),
        errors.len()
    );
    assert!(!errors.is_empty(), "the killed worker had no task left");
    for e in &errors {
        assert_eq!(e.code, ErrorCode::NodeDied, "{e}");
        assert!(e.message.ends_with("(after 1 attempt)"), "{e}");
    }
    for (i, v) in &values {
        assert_eq!(*v, *i as f64, "task {i}");
    }
    assert!(!c.head.log().contains("retrying task"));
}

/// A `Counter` named `name` and a `flaky(name, failures)` task with `retry`.
async fn flaky(
    cluster: &Cluster,
    m: &Module,
    name: &str,
    failures: u64,
    retry: impl FnOnce(reef::TaskBuilder<'_>) -> reef::TaskBuilder<'_>,
) -> (reef::Result<f64>, f64) {
    let counter = cluster
        .actor(m, "Counter")
        .arg(0.0)
        .name(name)
        .create()
        .await
        .unwrap();
    let task = retry(cluster.task(m, "flaky").arg(name).arg(failures))
        .submit()
        .unwrap();
    let result = cluster.get::<f64>(&task).await;
    let calls = cluster
        .get::<f64>(&counter.call("total").submit().unwrap())
        .await
        .unwrap();
    (result, calls)
}

#[tokio::test]
async fn guest_failures_are_retried_only_when_retry_exceptions_says_so() {
    let cluster = reef_testkit::node().await;
    let m = cluster.register_file(guest("nested")).await.unwrap();

    // Any guest failure: the third attempt succeeds.
    let (result, calls) = flaky(&cluster, &m, "all", 2, |t| {
        t.retry_exceptions(RetryExceptions::All)
    })
    .await;
    assert_eq!(result.unwrap(), 3.0);
    assert_eq!(calls, 3.0);

    // A listed code.
    let (result, _) = flaky(&cluster, &m, "listed", 1, |t| {
        t.retry_exceptions(RetryExceptions::Codes(vec![ErrorCode::GuestError]))
    })
    .await;
    assert_eq!(result.unwrap(), 2.0);

    // Off (the default): the first failure is the task's, at once.
    let (result, calls) = flaky(&cluster, &m, "off", 1, |t| t).await;
    let e = result.unwrap_err();
    assert_eq!(e.code, ErrorCode::GuestError, "{e}");
    assert!(e.message.contains("flaky: call 1 fails"), "{e}");
    assert!(!e.message.contains("attempt"), "{e}");
    assert_eq!(calls, 1.0);

    // Another code listed: not retried.
    let (result, calls) = flaky(&cluster, &m, "other", 1, |t| {
        t.retry_exceptions(RetryExceptions::Codes(vec![ErrorCode::BadArgument]))
    })
    .await;
    assert_eq!(result.unwrap_err().code, ErrorCode::GuestError);
    assert_eq!(calls, 1.0);

    // Retries run out: the last cause, with the attempt count.
    let (result, calls) = flaky(&cluster, &m, "out", 5, |t| {
        t.retry_exceptions(RetryExceptions::All).max_retries(2)
    })
    .await;
    let e = result.unwrap_err();
    assert_eq!(e.code, ErrorCode::GuestError, "{e}");
    assert!(
        e.message.contains("flaky: call 3 fails (after 3 attempts)"),
        "{e}"
    );
    assert_eq!(calls, 3.0);
}

#[tokio::test]
async fn status_shows_the_attempt_a_task_is_at() {
    let dir = tempdir().unwrap();
    let node = HostProcess::start(dir.path(), &[]);
    let cluster = node.connect().await;
    let m = cluster.register_file(guest("nested")).await.unwrap();
    cluster
        .actor(&m, "Counter")
        .arg(0.0)
        .name("c")
        .create()
        .await
        .unwrap();
    // Fails once, then its second attempt sleeps 3 s.
    let task = cluster
        .task(&m, "flaky")
        .arg("c")
        .arg(1u64)
        .arg(3000u64)
        .retry_exceptions(RetryExceptions::All)
        .submit()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let status = cluster.status().await.unwrap();
        if status
            .tasks
            .iter()
            .any(|t| t.function == "flaky" && t.attempt == 2)
        {
            break;
        }
        assert!(Instant::now() < deadline, "{:?}", status.tasks);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let out = String::from_utf8_lossy(&node.cli(&["status"]).stdout).into_owned();
    assert!(out.contains("flaky running (attempt 2)"), "{out}");
    assert_eq!(cluster.get::<f64>(&task).await.unwrap(), 2.0);
}
