//! Tenants' quotas against real nodes: a tenant over each quota gets
//! QUOTA_EXCEEDED naming it while the default tenant's work goes on,
//! `host tenant set` raises a quota and the same request then works, a
//! guest's nested submissions count against its task's tenant, and quotas
//! survive a restart of the head.

use std::collections::BTreeMap;
use std::process::Output;
use std::time::{Duration, Instant};

use reef::{CallOptions, Cluster, ErrorCode, ObjectRef, PlacementStrategy};
use reef_testkit::{guest, HostProcess};

const MIB: usize = 1 << 20;

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The quotas `host tenant list --json` shows for `name`.
fn listed_quotas(node: &HostProcess, name: &str) -> serde_json::Value {
    let out = node.admin_cli(&["tenant", "list", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap())
        .find(|v| v["name"] == name)
        .unwrap_or_else(|| panic!("no tenant {name}: {}", text(&out)))["quotas"]
        .clone()
}

fn assert_quota(err: &reef::Error, expected: &str) {
    assert_eq!(err.code, ErrorCode::QuotaExceeded, "{err}");
    assert!(err.message.contains(expected), "{err}");
}

/// Retries `attempt` (every 50 ms, up to 10 s) until it gives `Some`: the
/// node learns of quotas with the next cluster view, a moment after the
/// control plane stored them.
async fn eventually<T, F, Fut>(what: &str, mut attempt: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(v) = attempt().await {
            return v;
        }
        assert!(Instant::now() < deadline, "never happened: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Whether the task of `r` is still waiting (its result not sealed after 300 ms).
async fn still_pending(cluster: &Cluster, r: &ObjectRef) -> bool {
    let (ready, _) = cluster
        .wait(std::slice::from_ref(r), 1, Some(Duration::from_millis(300)))
        .await
        .unwrap();
    ready.is_empty()
}

fn add(cluster: &Cluster, m: &reef::Module) -> reef::Result<ObjectRef> {
    cluster.task(m, "add").arg(1.0).arg(2.0).submit()
}

#[tokio::test]
async fn a_tenant_over_its_quotas_is_refused_while_others_work() {
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    // One CPU (a task holding it keeps its nested tasks waiting), a `gate`
    // resource to hold tasks pending, `slot`s for placement groups.
    let head = HostProcess::start(
        dirs[0].path(),
        &[
            "--num-cpus",
            "1",
            "--resource",
            "gate=1",
            "--resource",
            "slot=4",
            "--max-call-memory",
            "1GiB",
        ],
    );
    let token = head.add_tenant(
        "b",
        dirs[1].path(),
        &[
            "--max-pending-tasks",
            "2",
            "--max-actors",
            "1",
            "--max-cpus",
            "1",
            "--max-call-memory",
            "64MiB",
            "--max-arena-bytes",
            "1MiB",
            "--max-placement-groups",
            "1",
        ],
    );
    let quotas = listed_quotas(&head, "b");
    assert_eq!(quotas["max_pending_tasks"], 2);
    assert_eq!(quotas["max_call_memory"], 64 * MIB);
    assert_eq!(
        listed_quotas(&head, "default")["max_actors"],
        serde_json::Value::Null
    );
    let out = head.admin_cli(&["tenant", "list"]);
    assert!(
        text(&out).contains("max-pending-tasks=2 max-actors=1"),
        "{}",
        text(&out)
    );

    let default = head.connect().await;
    let b = head.connect_as(&token).await;
    let demo = default.register_file(guest("demo")).await.unwrap();
    // The same module, registered by the tenant too.
    let again = b.register_file(guest("demo")).await.unwrap();
    assert_eq!(again.hash, demo.hash);
    let nested = b.register_file(guest("nested")).await.unwrap();

    // Arena bytes: a put over the quota (once the node has the view with it).
    let err = eventually("a 2 MiB put refused", || async {
        b.put_bytes(&vec![1u8; 2 * MIB]).await.err()
    })
    .await;
    assert_quota(
        &err,
        r#"tenant "b": arena bytes quota 1048576 exceeded (0 in use, 2097152 more asked)"#,
    );
    let held = b.put_bytes(&vec![2u8; 600 << 10]).await.unwrap();
    let err = b.put_bytes(&vec![3u8; 600 << 10]).await.unwrap_err();
    assert_quota(&err, "(614400 in use, 614400 more asked)");
    drop(held);
    let again = eventually("a put after a release", || async {
        b.put_bytes(&vec![3u8; 600 << 10]).await.ok()
    })
    .await;
    drop(again);
    // What B's tasks make counts too, while it lives: a task's result
    // (echo copies its argument) and a guest's put (returned by reference,
    // its bytes counted once).
    let arg = b.put_bytes(&vec![5u8; 300 << 10]).await.unwrap();
    let echo = |b: &Cluster| b.task(&demo, "echo").arg(&arg).submit().unwrap();
    let first = echo(&b);
    assert_eq!(b.get_bytes(&first).await.unwrap().len(), 300 << 10);
    let second = echo(&b);
    b.get_bytes(&second).await.unwrap();
    let err = b.get_bytes(&echo(&b)).await.err().expect("over the quota");
    assert_quota(
        &err,
        "arena bytes quota 1048576 exceeded (921600 in use, 307200 more asked)",
    );
    drop((first, second));
    let dag = b.register_file(guest("dag")).await.unwrap();
    let range = eventually("a guest's put after results were freed", || async {
        let r = b.task(&dag, "make_range").arg(75_000u64).submit().unwrap();
        b.get_bytes(&r).await.ok().map(|_| r)
    })
    .await;
    let err = b
        .get_bytes(&b.task(&dag, "make_range").arg(75_000u64).submit().unwrap())
        .await
        .err()
        .expect("over the quota");
    // The guest got QUOTA_EXCEEDED as the nearest code its WIT knows
    // (`infeasible`) and failed with it; the message names the quota.
    assert_eq!(err.code, ErrorCode::Infeasible, "{err}");
    assert!(
        err.message
            .contains("arena bytes quota 1048576 exceeded (907200 in use, 600000 more asked)"),
        "{err}"
    );
    drop((range, arg));
    // The default tenant puts what it likes.
    default.put_bytes(&vec![4u8; 4 * MIB]).await.unwrap();

    // Per call: CPUs and memory limit beyond the tenant's maximum fail at once.
    let r = b
        .task(&demo, "add")
        .arg(1.0)
        .arg(2.0)
        .num_cpus(2.0)
        .submit()
        .unwrap();
    let err = b.get::<f64>(&r).await.unwrap_err();
    assert_quota(
        &err,
        r#"tenant "b": CPUs quota 1 exceeded (the task asks for 2 CPUs)"#,
    );
    let r = b
        .task(&demo, "add")
        .arg(1.0)
        .arg(2.0)
        .memory_limit(128 << 20)
        .submit()
        .unwrap();
    let err = b.get::<f64>(&r).await.unwrap_err();
    assert_quota(&err, "call memory quota 64.0 MiB exceeded");
    // Without a limit asked, the task runs under the tenant's maximum.
    assert_eq!(b.get::<f64>(&add(&b, &demo).unwrap()).await.unwrap(), 3.0);
    // The node's own bound holds for every tenant.
    let r = default
        .task(&demo, "add")
        .arg(1.0)
        .arg(2.0)
        .memory_limit(8 << 30)
        .submit()
        .unwrap();
    let err = default.get::<f64>(&r).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::Infeasible, "{err}");
    assert!(err.message.contains("--max-call-memory"), "{err}");

    // Actors: one live at a time; a killed one frees its place.
    let first = b.actor(&demo, "Accumulator").create().await.unwrap();
    let err = b.actor(&demo, "Accumulator").create().await.err().unwrap();
    assert_quota(
        &err,
        r#"tenant "b": actors quota 1 exceeded (1 in use, 1 more asked)"#,
    );
    first.kill().await.unwrap();
    let second = eventually("an actor after a kill", || async {
        b.actor(&demo, "Accumulator").create().await.ok()
    })
    .await;
    second.kill().await.unwrap();
    let mut accumulators = Vec::new();
    for _ in 0..3 {
        accumulators.push(default.actor(&demo, "Accumulator").create().await.unwrap());
    }

    // Placement groups: one; a removed one frees its place.
    let group = || {
        b.placement_group(PlacementStrategy::Pack)
            .bundle([("slot", 1.0)])
            .create()
    };
    let pg = group().await.unwrap();
    let err = group().await.err().unwrap();
    assert_quota(
        &err,
        r#"tenant "b": placement groups quota 1 exceeded (1 in use, 1 more asked)"#,
    );
    pg.remove().await.unwrap();
    group().await.unwrap().remove().await.unwrap();

    // Pending tasks: two wait for the gate the default tenant's actor holds;
    // a third is refused, the default tenant's work goes on (actor calls and
    // puts; a task would queue behind the waiting ones: the node's line is
    // first come, first served until fair sharing).
    let gate = default
        .actor(&demo, "Accumulator")
        .options(CallOptions {
            resources: BTreeMap::from([("gate".to_string(), 1.0)]),
            ..Default::default()
        })
        .create()
        .await
        .unwrap();
    // Created means placed, not yet holding `gate`: its first call answers
    // once its instance runs (and so holds it).
    let first: f64 = default
        .get(&gate.call("add").arg(1.0).submit().unwrap())
        .await
        .unwrap();
    assert_eq!(first, 1.0);
    let gated = |cluster: &Cluster| {
        cluster
            .task(&demo, "add")
            .arg(1.0)
            .arg(2.0)
            .resource("gate", 1.0)
            .submit()
            .unwrap()
    };
    let waiting = [gated(&b), gated(&b)];
    assert!(still_pending(&b, &waiting[1]).await);
    let err = b.get::<f64>(&gated(&b)).await.unwrap_err();
    assert_quota(
        &err,
        r#"tenant "b": pending tasks quota 2 exceeded (2 in use, 1 more asked)"#,
    );
    let total = accumulators[0].call("add").arg(5.0).submit().unwrap();
    assert_eq!(default.get::<f64>(&total).await.unwrap(), 5.0);
    let big = default.put_bytes(&vec![5u8; 2 * MIB]).await.unwrap();
    assert_eq!(default.get_bytes(&big).await.unwrap().len(), 2 * MIB);

    // Raised: the same request is taken (it waits for the gate like the others).
    let out = head.admin_cli(&["tenant", "set", "b", "--max-pending-tasks", "3"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("max-pending-tasks=3"), "{}", text(&out));
    assert_eq!(
        listed_quotas(&head, "b")["max_actors"],
        1,
        "set kept the others"
    );
    let third = eventually("a third pending task taken", || async {
        let r = gated(&b);
        if still_pending(&b, &r).await {
            return Some(r);
        }
        assert_quota(&b.get::<f64>(&r).await.unwrap_err(), "pending tasks quota");
        None
    })
    .await;
    gate.kill().await.unwrap();
    for r in waiting.iter().chain([&third]) {
        assert_eq!(b.get::<f64>(r).await.unwrap(), 3.0);
    }

    // A guest's nested submissions count against its task's tenant: the
    // parent holds the only CPU, two children wait, the third is refused.
    let parent = b.task(&nested, "fan_out_add").arg(5u64).submit().unwrap();
    let err = b.get::<f64>(&parent).await.unwrap_err();
    assert!(
        err.message
            .contains(r#"tenant "b": pending tasks quota 3 exceeded"#),
        "{err}"
    );
    // The default tenant's nested work is not limited.
    let nested_default = default.register_file(guest("nested")).await.unwrap();
    let r = default
        .task(&nested_default, "fan_out_add")
        .arg(5u64)
        .submit()
        .unwrap();
    assert_eq!(default.get::<f64>(&r).await.unwrap(), 15.0);
}

#[tokio::test]
async fn quotas_survive_a_restart_of_the_head() {
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let port = reef_testkit::free_port();
    let head = HostProcess::start_on(dirs[0].path(), port, &[]).unwrap();
    let token = head.add_tenant("c", dirs[1].path(), &["--max-cpus", "0.5"]);
    let out = head.admin_cli(&["tenant", "set", "c", "--max-actors", "4"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = head.admin_cli(&["tenant", "set", "nobody", "--max-actors", "4"]);
    assert!(
        !out.status.success() && text(&out).contains("no tenant named nobody"),
        "{}",
        text(&out)
    );
    let out = head.admin_cli(&["stop"]);
    assert!(out.status.success(), "{}", text(&out));
    drop(head);

    let head = HostProcess::start_on(dirs[0].path(), port, &[]).unwrap();
    let quotas = listed_quotas(&head, "c");
    assert_eq!(quotas["max_cpus"], 0.5);
    assert_eq!(quotas["max_actors"], 4);
    let c = head.connect_as(&token).await;
    let demo = c.register_file(guest("demo")).await.unwrap();
    let err = eventually("a 1-CPU task refused", || async {
        c.get::<f64>(&add(&c, &demo).unwrap()).await.err()
    })
    .await;
    assert_quota(
        &err,
        r#"tenant "c": CPUs quota 0.5 exceeded (the task asks for 1 CPUs)"#,
    );
    let r = c
        .task(&demo, "add")
        .arg(1.0)
        .arg(2.0)
        .num_cpus(0.5)
        .submit()
        .unwrap();
    assert_eq!(c.get::<f64>(&r).await.unwrap(), 3.0);
    // Lifted: `unlimited`.
    let out = head.admin_cli(&["tenant", "set", "c", "--max-cpus", "unlimited"]);
    assert!(out.status.success(), "{}", text(&out));
    let sum = eventually("a 1-CPU task taken", || async {
        c.get::<f64>(&add(&c, &demo).unwrap()).await.ok()
    })
    .await;
    assert_eq!(sum, 3.0);
}

/// `--max-cpus-in-use`: a tenant's tasks beyond the CPUs it may hold at
/// once wait (they do not fail) while another tenant's go first; one asking
/// more than the cap could ever give fails at once.
#[tokio::test]
async fn a_cpus_in_use_quota_makes_work_wait_not_fail() {
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let head = HostProcess::start(dirs[0].path(), &["--num-cpus", "2"]);
    let token = head.add_tenant("capped", dirs[1].path(), &["--max-cpus-in-use", "1"]);
    assert_eq!(listed_quotas(&head, "capped")["max_cpus_in_use"], 1.0);
    let capped = head.connect_as(&token).await;
    let other = head.connect().await;
    let m = capped.register_file(guest("nested")).await.unwrap();
    let mine = other.register_file(guest("nested")).await.unwrap();
    // The node learns of the quota with the next view: a 2-CPU ask fails.
    let e = eventually("the CPUs-in-use quota reaches the node", || async {
        let r = capped
            .task(&m, "pause")
            .arg(1u64)
            .arg(0.0)
            .num_cpus(2.0)
            .submit()
            .unwrap();
        capped.get::<f64>(&r).await.err()
    })
    .await;
    assert_quota(&e, "CPUs-in-use quota 1");

    let flood: Vec<ObjectRef> = (0..4)
        .map(|i| {
            capped
                .task(&m, "pause")
                .arg(700u64)
                .arg(i as f64)
                .num_cpus(1.0)
                .submit()
                .unwrap()
        })
        .collect();
    // The other tenant's task is not held behind the capped flood: it ends
    // while at least two of the flood still wait.
    let quick = other
        .task(&mine, "pause")
        .arg(1u64)
        .arg(9.0)
        .num_cpus(1.0)
        .submit()
        .unwrap();
    assert_eq!(other.get::<f64>(&quick).await.unwrap(), 9.0);
    let (ready, _) = capped
        .wait(&flood, flood.len(), Some(Duration::from_millis(1)))
        .await
        .unwrap();
    assert!(
        ready.len() <= 2,
        "{} of 4 capped tasks already done",
        ready.len()
    );
    // Never more than one of the capped tenant's tasks runs at once.
    let mut most = 0;
    let deadline = Instant::now() + Duration::from_millis(1500);
    while Instant::now() < deadline {
        let running = capped
            .list_tasks(&reef::ListOptions::new().filter("state", "running"))
            .await
            .unwrap()
            .rows
            .len();
        most = most.max(running);
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    assert_eq!(most, 1, "the capped tenant ran {most} tasks at once");
    // They all ran, in turn.
    let values: Vec<f64> = capped.get_many(&flood).await.unwrap();
    assert_eq!(values, [0.0, 1.0, 2.0, 3.0]);
}

/// A task whose result its driver released while it waited or ran still
/// counts against the pending-tasks quota until it is done: submitting and
/// dropping at once cannot queue unbounded work on the node.
#[tokio::test]
async fn a_released_task_counts_as_pending_until_it_is_done() {
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let head = HostProcess::start(dirs[0].path(), &["--num-cpus", "1"]);
    let token = head.add_tenant(
        "b",
        dirs[1].path(),
        &["--max-pending-tasks", "1", "--max-cpus", "1"],
    );
    let b = head.connect_as(&token).await;
    wait_for_quotas(&b, "b").await;
    let nested = b.register_file(guest("nested")).await.unwrap();
    let demo = b.register_file(guest("demo")).await.unwrap();
    let long = b.task(&nested, "pause").arg(3000u64).arg(1.0);
    release_and_check_the_charge_is_kept(&b, &demo, long).await;
}

/// Submits `long`, a 3 s task of a tenant allowed one pending task, and
/// drops its result at once: once the node has freed the result, the
/// tenant's next task is refused while `long` runs, and taken after.
async fn release_and_check_the_charge_is_kept(
    b: &Cluster,
    demo: &reef::Module,
    long: reef::TaskBuilder<'_>,
) {
    let long = long.submit().unwrap();
    let (started, id) = (Instant::now(), long.id());
    drop(long);
    // Released: the node forgot the pending result.
    eventually("the node frees the released result", || async {
        b.get_object_info(id).await.is_err().then_some(())
    })
    .await;
    let r = add(b, demo).unwrap();
    let err = b.get::<f64>(&r).await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_millis(3000),
        "the released task ended before the check"
    );
    assert_quota(&err, r#"tenant "b": pending tasks quota 1 exceeded"#);
    // Once it is done, the tenant's next task is taken.
    let sum = eventually("a task taken after the released one ended", || async {
        b.get::<f64>(&add(b, demo).unwrap()).await.ok()
    })
    .await;
    assert_eq!(sum, 3.0);
}

/// The same for a task the node forwarded to another: its charge is kept
/// until the node it ran on reports it done.
#[tokio::test]
async fn a_released_forwarded_task_counts_as_pending_until_it_is_done() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let head = HostProcess::start(dirs[0].path(), &["--num-cpus", "1"]);
    let worker = HostProcess::start_worker(dirs[1].path(), &head, &["--num-cpus", "1"]);
    let token = head.add_tenant(
        "b",
        dirs[2].path(),
        &["--max-pending-tasks", "1", "--max-cpus", "2"],
    );
    let b = head.connect_as(&token).await;
    let worker_id = joined_worker(&b).await;
    let nested = b.register_file(guest("nested")).await.unwrap();
    let demo = b.register_file(guest("demo")).await.unwrap();
    // The pending-tasks quota reached the head: a second task in flight is refused.
    eventually("the quotas reach the node", || async {
        let first = b
            .task(&nested, "pause")
            .arg(500u64)
            .arg(1.0)
            .submit()
            .ok()?;
        let second = add(&b, &demo).ok()?;
        let refused = b.get::<f64>(&second).await.err();
        let _ = b.get_bytes(&first).await;
        refused.filter(|e| e.code == ErrorCode::QuotaExceeded)
    })
    .await;
    let long =
        b.task(&nested, "pause")
            .arg(3000u64)
            .arg(1.0)
            .strategy(reef::Strategy::NodeAffinity {
                node_id: worker_id,
                soft: false,
            });
    release_and_check_the_charge_is_kept(&b, &demo, long).await;
    drop(worker);
}

/// An actor created through the head that dies for good on another node
/// (a trap, no restarts left) gives its place under `--max-actors` back on
/// the head: the tenant's next actor is taken.
#[tokio::test]
async fn an_actor_that_died_on_another_node_frees_its_place_under_the_quota() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let head = HostProcess::start(dirs[0].path(), &[]);
    let worker = HostProcess::start_worker(dirs[1].path(), &head, &[]);
    let token = head.add_tenant("b", dirs[2].path(), &["--max-actors", "1"]);
    let b = head.connect_as(&token).await;
    let worker_id = joined_worker(&b).await;
    let nested = b.register_file(guest("nested")).await.unwrap();
    let on_worker = reef::Strategy::NodeAffinity {
        node_id: worker_id,
        soft: false,
    };
    let counter = b
        .actor(&nested, "Counter")
        .arg(1.0)
        .strategy(on_worker.clone())
        .create()
        .await
        .unwrap();
    // The quota reached the head: a second actor is refused.
    let err = eventually("the actors quota reaches the head", || async {
        let second = b.actor(&nested, "Counter").arg(1.0).create().await;
        match second {
            Ok(actor) => {
                actor.kill().await.unwrap();
                None
            }
            Err(e) => Some(e),
        }
    })
    .await;
    assert_quota(
        &err,
        r#"tenant "b": actors quota 1 exceeded (1 in use, 1 more asked)"#,
    );
    // It traps on the worker with no restart left: dead there for good.
    let crash = counter.call("crash").submit().unwrap();
    assert_eq!(
        b.get::<f64>(&crash).await.unwrap_err().code,
        ErrorCode::GuestTrap
    );
    let next = counter.call("add").arg(1.0).submit().unwrap();
    assert_eq!(
        b.get::<f64>(&next).await.unwrap_err().code,
        ErrorCode::ActorDead
    );
    // The head learns it and takes the tenant's next actor.
    counter_taken_again(&b, &nested, on_worker).await;
    drop(worker);
}

/// Creates a `Counter` (with `strategy`) once the node takes it, and checks
/// that it counts: the tenant's place under its actors quota was given back.
async fn counter_taken_again(b: &Cluster, nested: &reef::Module, strategy: reef::Strategy) {
    let again = eventually("an actor created once a place was given back", || async {
        b.actor(nested, "Counter")
            .arg(2.0)
            .strategy(strategy.clone())
            .create()
            .await
            .ok()
    })
    .await;
    let r = again.call("add").arg(1.0).submit().unwrap();
    assert_eq!(b.get::<f64>(&r).await.unwrap(), 3.0);
}

/// An actor whose creation fails on the node it was placed on (there, over
/// the tenant's instances quota) frees its place under the actors quota on
/// the node that created it, as one that died there does.
#[tokio::test]
async fn an_actor_whose_creation_failed_on_another_node_frees_its_place() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let head = HostProcess::start(dirs[0].path(), &[]);
    let worker = HostProcess::start_worker(dirs[1].path(), &head, &[]);
    let token = head.add_tenant(
        "b",
        dirs[2].path(),
        &["--max-actors", "2", "--max-instances", "1"],
    );
    let b = head.connect_as(&token).await;
    let worker_id = joined_worker(&b).await;
    let head_id = b
        .status()
        .await
        .unwrap()
        .nodes
        .into_iter()
        .find(|n| n.head)
        .unwrap()
        .node_id;
    let nested = b.register_file(guest("nested")).await.unwrap();
    let pinned = |node_id: &str| reef::Strategy::NodeAffinity {
        node_id: node_id.to_string(),
        soft: false,
    };
    // The first actor holds the tenant's one instance on the worker.
    let first = b
        .actor(&nested, "Counter")
        .arg(1.0)
        .strategy(pinned(&worker_id))
        .create()
        .await
        .unwrap();
    let r = first.call("add").arg(1.0).submit().unwrap();
    assert_eq!(b.get::<f64>(&r).await.unwrap(), 2.0);
    // A second is placed there too (the head allows 2 actors) and fails
    // on the worker once the quota reached it.
    let err = eventually("a creation refused on the worker", || async {
        // (Refused here while a killed one's place is still being given back.)
        let second = b
            .actor(&nested, "Counter")
            .arg(1.0)
            .strategy(pinned(&worker_id))
            .create()
            .await
            .ok()?;
        let r = second.call("add").arg(1.0).submit().unwrap();
        match b.get::<f64>(&r).await {
            Ok(_) => {
                second.kill().await.unwrap();
                None
            }
            Err(e) => Some(e),
        }
    })
    .await;
    assert!(
        err.message
            .contains(r#"tenant "b": instances quota 1 exceeded"#),
        "{err}"
    );
    // The head learns it: the tenant's second place is free again.
    counter_taken_again(&b, &nested, pinned(&head_id)).await;
    drop(worker);
}

/// A burst of actor creations cannot pass `--max-instances` together:
/// each reserves its instance when it is checked. The node's CPUs are busy
/// with another tenant's tasks, so no creation holds its instance yet when
/// the next is checked: of 8 created at once by a tenant allowed 2, at most
/// 2 are made and the rest refused (before, all 8 were made, 6 of them then
/// waiting for an instance).
#[tokio::test]
async fn a_burst_of_actor_creations_stays_within_the_instances_quota() {
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let head = HostProcess::start(dirs[0].path(), &["--num-cpus", "2"]);
    let token = head.add_tenant("burst", dirs[1].path(), &["--max-instances", "2"]);
    let b = head.connect_as(&token).await;
    let other = head.connect().await;
    let m = b.register_file(guest("nested")).await.unwrap();
    let mine = other.register_file(guest("nested")).await.unwrap();
    wait_for_instances_quota(&b, &m).await;
    // Both CPUs held by the other tenant for 20 s (the test ends before).
    let _busy: Vec<_> = (0..2)
        .map(|i| {
            other
                .task(&mine, "pause")
                .arg(20_000u64)
                .arg(i as f64)
                .submit()
                .unwrap()
        })
        .collect();
    // Tried again while the killed actors of a try still hold their places.
    eventually("2 of a burst of 8 made", || async {
        let burst = (0..8).map(|_| b.actor(&m, "Counter").arg(1.0).num_cpus(1.0).create());
        let mut made = Vec::new();
        for outcome in futures::future::join_all(burst).await {
            match outcome {
                Ok(actor) => made.push(actor),
                Err(e) => assert_quota(&e, r#"tenant "burst": instances quota 2 exceeded"#),
            }
        }
        assert!(
            made.len() <= 2,
            "{} of 8 actors made with a quota of 2",
            made.len()
        );
        let done = made.len() == 2;
        for actor in made {
            actor.kill().await.unwrap();
        }
        done.then_some(())
    })
    .await;
}

/// Waits until the node has `--max-instances 2` for the tenant of
/// `cluster`: a third actor beside two is refused (those made are killed).
async fn wait_for_instances_quota(cluster: &Cluster, m: &reef::Module) {
    eventually("the instances quota reaches the node", || async {
        let mut held = Vec::new();
        let mut refused = false;
        for _ in 0..3 {
            match cluster.actor(m, "Counter").arg(1.0).create().await {
                Ok(actor) => held.push(actor),
                Err(e) if e.code == ErrorCode::QuotaExceeded => refused = true,
                Err(e) => panic!("{e}"),
            }
        }
        for actor in held {
            actor.kill().await.unwrap();
        }
        refused.then_some(())
    })
    .await;
}

/// Waits until the head and one worker are alive; the worker's node id.
async fn joined_worker(cluster: &Cluster) -> String {
    eventually("the worker joins", || async {
        let status = cluster.status().await.ok()?;
        let alive = status.nodes.iter().filter(|n| n.state == "alive").count();
        let worker = status.nodes.iter().find(|n| !n.head)?;
        (alive == 2).then(|| worker.node_id.clone())
    })
    .await
}

/// Waits until the node has tenant `name`'s quotas (its view came): a
/// 2-CPU task of a tenant given `--max-cpus 1` is refused.
async fn wait_for_quotas(cluster: &Cluster, name: &str) {
    let m = cluster.register_file(guest("demo")).await.unwrap();
    let err = eventually("the quotas reach the node", || async {
        let r = cluster
            .task(&m, "add")
            .arg(1.0)
            .arg(2.0)
            .num_cpus(2.0)
            .submit()
            .unwrap();
        cluster.get::<f64>(&r).await.err()
    })
    .await;
    assert_quota(&err, &format!("tenant {name:?}: CPUs quota 1 exceeded"));
}

/// `--max-call-cpu-ms`: a call asking more CPU time is refused, one asking
/// none is stopped at the tenant's maximum; another tenant keeps the node's
/// default.
#[tokio::test]
async fn a_call_cpu_time_quota_caps_every_call_of_the_tenant() {
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let head = HostProcess::start(dirs[0].path(), &[]);
    let token = head.add_tenant("cpu", dirs[1].path(), &["--max-call-cpu-ms", "300"]);
    assert_eq!(listed_quotas(&head, "cpu")["max_call_cpu_ms"], 300);
    let out = head.admin_cli(&["tenant", "list"]);
    assert!(text(&out).contains("max-call-cpu-ms=300"), "{}", text(&out));
    let capped = head.connect_as(&token).await;
    let other = head.connect().await;
    let bad = capped.register_file(guest("bad")).await.unwrap();
    let mine = other.register_file(guest("bad")).await.unwrap();
    // Asking more than the quota fails at once (once the node has the view).
    let err = eventually("the CPU-time quota reaches the node", || async {
        let r = capped
            .task(&bad, "print")
            .cpu_time(Duration::from_secs(10))
            .submit()
            .unwrap();
        capped.get_bytes(&r).await.err()
    })
    .await;
    assert_quota(
        &err,
        r#"tenant "cpu": call CPU time quota 300 ms exceeded (the task asks for a CPU-time limit of 10000 ms)"#,
    );
    // Asking none: stopped at the quota.
    let r = capped.task(&bad, "loop_forever").submit().unwrap();
    let err = capped.get::<u64>(&r).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::CpuTimeLimit, "{err}");
    assert!(err.message.contains("CPU-time limit of 300 ms"), "{err}");
    // So is an actor's every call (its creation asked none).
    let talker = capped.actor(&bad, "Talker").create().await.unwrap();
    let said = talker.call("say").arg("hi").submit().unwrap();
    capped.get_bytes(&said).await.unwrap();
    let err = capped
        .actor(&bad, "Talker")
        .options(CallOptions {
            cpu_time: Some(Duration::from_secs(1)),
            ..Default::default()
        })
        .create()
        .await
        .err()
        .unwrap();
    assert_quota(
        &err,
        "call CPU time quota 300 ms exceeded (the actor asks for",
    );
    // The other tenant's asks are not limited by it.
    let r = other
        .task(&mine, "print")
        .cpu_time(Duration::from_secs(10))
        .submit()
        .unwrap();
    other.get_bytes(&r).await.unwrap();
    let r = other
        .task(&mine, "loop_forever")
        .cpu_time(Duration::from_millis(1500))
        .submit()
        .unwrap();
    let err = other.get::<u64>(&r).await.unwrap_err();
    assert!(err.message.contains("CPU-time limit of 1500 ms"), "{err}");
}

/// `--max-instances`: a tenant's tasks past it wait for its own instances
/// (another tenant's do not), an actor creation past it fails.
#[tokio::test]
async fn an_instances_quota_makes_tasks_wait_and_refuses_actors() {
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let head = HostProcess::start(dirs[0].path(), &["--num-cpus", "4"]);
    let token = head.add_tenant("inst", dirs[1].path(), &["--max-instances", "1"]);
    assert_eq!(listed_quotas(&head, "inst")["max_instances"], 1);
    let capped = head.connect_as(&token).await;
    let other = head.connect().await;
    let m = capped.register_file(guest("nested")).await.unwrap();
    let mine = other.register_file(guest("nested")).await.unwrap();
    // The node learns of the quota with the next view: then an actor
    // beside a running task is refused.
    let (first, err) = eventually("the instances quota reaches the node", || async {
        let first = capped
            .task(&m, "pause")
            .arg(3000u64)
            .arg(1.0)
            .submit()
            .unwrap();
        // Running once the second, submitted after it, still waits.
        let second = capped
            .task(&m, "pause")
            .arg(1u64)
            .arg(2.0)
            .submit()
            .unwrap();
        if !still_pending(&capped, &second).await {
            return None;
        }
        let err = capped
            .actor(&m, "Counter")
            .create()
            .await
            .err()
            .expect("an actor beside a running task of a 1-instance tenant");
        Some(((first, second), err))
    })
    .await;
    assert_quota(
        &err,
        r#"tenant "inst": instances quota 1 exceeded (1 in use, 1 more asked)"#,
    );
    // The other tenant's work runs meanwhile, beside the waiting task.
    let quick = other
        .task(&mine, "pause")
        .arg(1u64)
        .arg(9.0)
        .submit()
        .unwrap();
    assert_eq!(other.get::<f64>(&quick).await.unwrap(), 9.0);
    let counter = other.actor(&mine, "Counter").create().await.unwrap();
    counter.kill().await.unwrap();
    // Both of the capped tenant's tasks ran, in turn.
    assert_eq!(capped.get::<f64>(&first.0).await.unwrap(), 1.0);
    assert_eq!(capped.get::<f64>(&first.1).await.unwrap(), 2.0);
    // With its instance free, its actor is taken.
    let counter = eventually("an actor once the tasks ended", || async {
        capped.actor(&m, "Counter").create().await.ok()
    })
    .await;
    // Lifted: a second actor beside the first.
    let out = head.admin_cli(&["tenant", "set", "inst", "--max-instances", "unlimited"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        listed_quotas(&head, "inst")["max_instances"],
        serde_json::Value::Null
    );
    let second = eventually("a second actor once the quota is lifted", || async {
        capped.actor(&m, "Counter").create().await.ok()
    })
    .await;
    second.kill().await.unwrap();
    counter.kill().await.unwrap();
}

/// `--max-spill-bytes`: past it the tenant's objects stay in memory and its
/// own put that needs room fails naming the quota; freeing its objects
/// gives room back.
#[tokio::test]
async fn a_spill_quota_refuses_puts_that_would_spill_more() {
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let head = HostProcess::start(dirs[0].path(), &["--object-store-memory", "16MiB"]);
    let token = head.add_tenant(
        "spill",
        dirs[1].path(),
        &["--max-spill-bytes", "2MiB", "--max-cpus", "1"],
    );
    assert_eq!(listed_quotas(&head, "spill")["max_spill_bytes"], 2 * MIB);
    let out = head.admin_cli(&["tenant", "list"]);
    assert!(
        text(&out).contains("max-spill-bytes=2.0 MiB"),
        "{}",
        text(&out)
    );
    let capped = head.connect_as(&token).await;
    let other = head.connect().await;
    let mine = other.put_bytes(&vec![7u8; MIB]).await.unwrap();
    let m = other.register_file(guest("demo")).await.unwrap();
    wait_for_quotas(&capped, "spill").await;
    let mut held = Vec::new();
    let err = loop {
        assert!(
            held.len() < 64,
            "64 MiB put into a 16 MiB store, nothing refused"
        );
        match capped.put_bytes(&vec![held.len() as u8; MIB]).await {
            Ok(r) => held.push(r),
            Err(e) => break e,
        }
    };
    assert_quota(
        &err,
        r#"tenant "spill": spill bytes quota 2.0 MiB exceeded ("#,
    );
    assert!(
        err.message.contains("a put of 1048576 bytes needs room"),
        "{err}"
    );
    // More than the store holds was put: some were spilled, at most 2 MiB.
    assert!(held.len() > 8, "only {} puts before {err}", held.len());
    // The other tenant's small work goes on.
    assert_eq!(
        other.get::<f64>(&add(&other, &m).unwrap()).await.unwrap(),
        3.0
    );
    // Freed: room again, and the first (spilled) object reads back intact.
    let first = held.remove(0);
    drop(held);
    let back = eventually("room after the tenant freed its objects", || async {
        capped.get_bytes(&first).await.ok()
    })
    .await;
    assert!(back.len() == MIB && back.iter().all(|&b| b == 0));
    let again = eventually("a put after the tenant freed its objects", || async {
        capped.put_bytes(&vec![1u8; MIB]).await.ok()
    })
    .await;
    drop(again);
    let bytes = other.get_bytes(&mine).await.unwrap();
    assert!(bytes.len() == MIB && bytes.iter().all(|&b| b == 7));
}

/// `--max-log-bytes`: past it the tenant's own oldest logs are deleted,
/// never another tenant's.
#[tokio::test]
async fn a_log_quota_deletes_the_tenants_own_oldest_logs_only() {
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let head = HostProcess::start(dirs[0].path(), &[]);
    let token = head.add_tenant(
        "logs",
        dirs[1].path(),
        &["--max-log-bytes", "256KiB", "--max-cpus", "1"],
    );
    assert_eq!(listed_quotas(&head, "logs")["max_log_bytes"], 256 << 10);
    let out = head.admin_cli(&["tenant", "list"]);
    assert!(
        text(&out).contains("max-log-bytes=256.0 KiB"),
        "{}",
        text(&out)
    );
    let capped = head.connect_as(&token).await;
    let other = head.connect().await;
    let bad = capped.register_file(guest("bad")).await.unwrap();
    let mine = other.register_file(guest("bad")).await.unwrap();
    wait_for_quotas(&capped, "logs").await;
    // The other tenant's log comes first: the oldest on the node.
    let kept = other.task(&mine, "print").submit().unwrap();
    other.get_bytes(&kept).await.unwrap();
    let first = capped.task(&bad, "print").submit().unwrap();
    capped.get_bytes(&first).await.unwrap();
    assert_eq!(capped.logs(&first).await.unwrap().stdout, "hello stdout\n");
    // 2 MiB of logs in one flood: the tenant's first log goes.
    let flood = capped.task(&bad, "flood").arg(1u64).submit().unwrap();
    capped.get::<u64>(&flood).await.unwrap();
    let logs = capped.logs(&first).await;
    assert!(
        !logs
            .as_ref()
            .is_ok_and(|l| l.stdout.contains("hello stdout")),
        "{logs:?}"
    );
    // The other tenant's older log is all there.
    let logs = other.logs(&kept).await.unwrap();
    assert_eq!(logs.stdout, "hello stdout\n", "{logs:?}");
    // The tenant's latest flood is readable (its newest segment kept).
    let flood = capped.task(&bad, "flood").arg(1u64).submit().unwrap();
    capped.get::<u64>(&flood).await.unwrap();
    let page = capped.logs(&flood).await.unwrap();
    assert!(!page.stdout.is_empty(), "{page:?}");
}

/// A node's driver session slots (16,383) are counted per tenant: past
/// `--max-sessions-per-tenant` a tenant's next session is refused with
/// QUOTA_EXCEEDED naming the quota, while another tenant and the admin
/// still connect, and a session that ends gives its place back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_opens_its_cap_of_sessions_at_most() {
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let node = HostProcess::start(dirs[0].path(), &["--max-sessions-per-tenant", "3"]);
    let token_a = node.add_tenant("team-a", dirs[1].path(), &[]);
    let token_b = node.add_tenant("team-b", dirs[1].path(), &[]);
    let connect = |token: &std::path::Path| {
        let options = reef::ConnectOptions::default().token_file(token).unwrap();
        Cluster::connect_with(&node.address, options)
    };
    let mut b: Vec<Cluster> = Vec::new();
    for _ in 0..3 {
        b.push(connect(&token_b).await.unwrap());
    }
    let err = connect(&token_b)
        .await
        .err()
        .expect("a fourth session of B");
    assert_quota(&err, "sessions quota 3 exceeded on this node (3 open");

    // A, and the admin, are not held back by B's sessions.
    let a = connect(&token_a).await.unwrap();
    let m = a.register_file(guest("demo")).await.unwrap();
    let r = a.task(&m, "add").arg(2.0).arg(3.0).submit().unwrap();
    assert_eq!(a.get::<f64>(&r).await.unwrap(), 5.0);
    let admin = connect(&node.admin_token_file()).await.unwrap();
    drop(admin);

    // A session that ends gives its place back (once the node saw it close).
    b.pop();
    eventually("a place for B's session", || async {
        connect(&token_b).await.ok()
    })
    .await;
}
