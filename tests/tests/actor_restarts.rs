//! Actor fault tolerance against real `host` processes: an actor whose node
//! is SIGKILLed mid-stream of calls is placed again (its name resolving to
//! the same id, `actor-init` run again, calls answered in order), an actor
//! whose instance traps restarts in place up to `max_restarts`, calls that
//! were running are retried up to `max_task_retries`, and actors end with
//! their driver or creator node unless detached.

use std::time::{Duration, Instant};

use reef::{ActorHandle, Cluster, ErrorCode, Lifetime, ObjectRef, Strategy};
use reef_testkit::cluster3::{cluster3, id_of, node_ids, NODE_TIMEOUT};
use reef_testkit::{guest, node, HostProcess};

/// Soft affinity: starts on `node_id`, may be placed elsewhere later.
fn prefer(node_id: &str) -> Strategy {
    Strategy::NodeAffinity {
        node_id: node_id.to_string(),
        soft: true,
    }
}

/// Hard affinity to one node.
fn on(node_id: &str) -> Strategy {
    Strategy::NodeAffinity {
        node_id: node_id.to_string(),
        soft: false,
    }
}

/// Waits for a result, failing the test if it takes longer than `wait`.
async fn get_within(driver: &Cluster, r: &ObjectRef, wait: Duration) -> reef::Result<f64> {
    tokio::time::timeout(wait, driver.get::<f64>(r))
        .await
        .unwrap_or_else(|_| panic!("a call still pending after {wait:?}"))
}

/// The state `host status` shows for the actors of `class` on a node.
async fn states(driver: &Cluster, class: &str) -> Vec<String> {
    driver
        .status()
        .await
        .unwrap()
        .actors
        .into_iter()
        .filter(|a| a.class == class)
        .map(|a| a.state)
        .collect()
}

#[tokio::test]
async fn an_actor_whose_node_is_killed_mid_stream_restarts_elsewhere() {
    let mut c = cluster3().await;
    let driver = c.head.connect().await;
    let m = driver.register_file(guest("nested")).await.unwrap();
    let nodes = node_ids(&driver).await;
    let a = id_of(&nodes, &c.a);
    // Two actors on worker a: one retries the calls it was running, one not.
    let create = |name: &str, retries: i32| {
        driver
            .actor(&m, "Counter")
            .arg(100.0)
            .name(name)
            .strategy(prefer(&a))
            .max_restarts(2)
            .max_task_retries(retries)
            .create()
    };
    let retried = create("survivor", -1).await.unwrap();
    let unretried = create("survivor-no-retries", 0).await.unwrap();
    let stream = |actor: &ActorHandle| -> Vec<ObjectRef> {
        (0..150)
            .map(|_| {
                let call = actor.call("slow_add").arg(1.0).arg(10u64);
                call.submit().unwrap()
            })
            .collect()
    };
    let (first, second) = (stream(&retried), stream(&unretried));
    // Mid-stream: some calls answered, most still queued or running on a.
    let wait = NODE_TIMEOUT + Duration::from_secs(30);
    for r in first.iter().take(10) {
        get_within(&driver, r, wait).await.unwrap();
    }
    c.a.kill().unwrap();
    let killed = Instant::now();
    // Calls made while it restarts wait for it, then run in order.
    let after: Vec<ObjectRef> = (0..20)
        .map(|_| retried.call("add").arg(1.0).submit().unwrap())
        .collect();

    // Retried: every call answered; one reset to the constructor's value
    // (init ran again with its argument), counting up by one before and after.
    let mut totals = Vec::new();
    for r in first.iter().chain(&after) {
        totals.push(get_within(&driver, r, wait).await.unwrap());
    }
    eprintln!(
        "restarted and answered {:?} after the kill",
        killed.elapsed()
    );
    let reset = totals
        .iter()
        .skip(1)
        .position(|&t| t == 101.0)
        .map(|i| i + 1)
        .unwrap_or_else(|| panic!("init did not run again: {totals:?}"));
    assert!(reset >= 10, "{totals:?}");
    for (i, t) in totals[..reset].iter().enumerate() {
        assert_eq!(*t, 101.0 + i as f64, "before the restart: {totals:?}");
    }
    for (i, t) in totals[reset..].iter().enumerate() {
        assert_eq!(*t, 101.0 + i as f64, "after the restart: {totals:?}");
    }

    // Not retried: calls that were on a when it died fail with
    // ACTOR_RESTARTING naming the node's death; none fails otherwise.
    let mut restarting = 0;
    for r in &second {
        match get_within(&driver, r, wait).await {
            Ok(_) => {}
            Err(e) => {
                assert_eq!(e.code, ErrorCode::ActorRestarting, "{e}");
                assert!(e.message.contains("died"), "{e}");
                restarting += 1;
            }
        }
    }
    assert!(restarting > 0, "no call of the unretried actor was lost");
    let r = unretried.call("add").arg(1.0).submit().unwrap();
    assert_eq!(get_within(&driver, &r, wait).await.unwrap(), 101.0);

    // The name resolves to the same actor from another node's driver, and
    // it lives on a node that is alive, restarted once.
    let on_b = c.b.connect().await;
    let found = on_b.get_actor("survivor").await.unwrap();
    assert_eq!(found.id(), retried.id());
    let r = found.call("total").submit().unwrap();
    assert_eq!(
        get_within(&on_b, &r, wait).await.unwrap(),
        *totals.last().unwrap()
    );
    let mut seen = states(&driver, "Counter").await;
    seen.extend(states(&on_b, "Counter").await);
    assert_eq!(
        seen,
        vec!["alive (restarts: 1)".to_string(); 2],
        "host status of head and b"
    );
    assert!(c.head.log().contains("restarting actor"));
}

#[tokio::test]
async fn an_actor_whose_instance_traps_restarts_up_to_max_restarts() {
    let cluster = node().await;
    let m = cluster.register_file(guest("nested")).await.unwrap();
    let wait = Duration::from_secs(30);
    let counter = cluster
        .actor(&m, "Counter")
        .arg(10.0)
        .max_restarts(1)
        .create()
        .await
        .unwrap();
    let call = |method: &str| counter.call(method).arg(1.0).submit().unwrap();
    assert_eq!(
        get_within(&cluster, &call("add"), wait).await.unwrap(),
        11.0
    );
    // The call that trapped fails with the trap; the actor restarts and the
    // next call sees a new instance, built from the same argument.
    let (crash, next) = (call("crash"), call("add"));
    let e = get_within(&cluster, &crash, wait).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::GuestTrap, "{e}");
    assert_eq!(get_within(&cluster, &next, wait).await.unwrap(), 11.0);
    assert_eq!(
        states(&cluster, "Counter").await,
        vec!["alive (restarts: 1)"]
    );
    // No restart left: the actor is dead and says why.
    let (crash, next) = (call("crash"), call("add"));
    assert_eq!(
        get_within(&cluster, &crash, wait).await.unwrap_err().code,
        ErrorCode::GuestTrap
    );
    let e = get_within(&cluster, &next, wait).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::ActorDead, "{e}");
    assert!(e.message.contains("GUEST_TRAP"), "{e}");

    // max_restarts 0 (the default): dead at the first trap.
    let fragile = cluster.actor(&m, "Counter").create().await.unwrap();
    let crash = fragile.call("crash").submit().unwrap();
    let next = fragile.call("add").arg(1.0).submit().unwrap();
    assert_eq!(
        get_within(&cluster, &crash, wait).await.unwrap_err().code,
        ErrorCode::GuestTrap
    );
    let e = get_within(&cluster, &next, wait).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::ActorDead, "{e}");
    assert!(e.message.contains("GUEST_TRAP"), "{e}");
}

#[tokio::test]
async fn max_task_retries_runs_the_failed_call_again() {
    let cluster = node().await;
    let m = cluster.register_file(guest("nested")).await.unwrap();
    let wait = Duration::from_secs(30);
    let counter = cluster
        .actor(&m, "Counter")
        .arg(5.0)
        .max_restarts(3)
        .max_task_retries(2)
        .create()
        .await
        .unwrap();
    // `crash` traps every time: it runs 3 times (2 retries), each on a new
    // instance, then fails with its trap; the calls behind it wait.
    let crash = counter.call("crash").submit().unwrap();
    let next = counter.call("add").arg(1.0).submit().unwrap();
    let e = get_within(&cluster, &crash, wait).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::GuestTrap, "{e}");
    assert_eq!(get_within(&cluster, &next, wait).await.unwrap(), 6.0);
    assert_eq!(
        states(&cluster, "Counter").await,
        vec!["alive (restarts: 3)"]
    );
}

/// Waits until a name no longer resolves (the actor ended), within 10 s.
async fn until_gone(driver: &Cluster, name: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match driver.get_actor(name).await {
            Err(e) => {
                assert_eq!(e.code, ErrorCode::UnknownActor, "{e}");
                return;
            }
            Ok(_) => assert!(Instant::now() < deadline, "`{name}` outlived its owner"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn detached_actors_outlive_their_driver_and_others_do_not() {
    let dir = tempfile::tempdir().unwrap();
    let host = HostProcess::start(dir.path(), &[]);
    {
        let first = host.connect().await;
        let m = first.register_file(guest("nested")).await.unwrap();
        for (name, lifetime) in [("owned", Lifetime::Owned), ("kept", Lifetime::Detached)] {
            let a = first
                .actor(&m, "Counter")
                .arg(1.0)
                .name(name)
                .lifetime(lifetime)
                .create()
                .await
                .unwrap();
            let r = a.call("add").arg(1.0).submit().unwrap();
            assert_eq!(first.get::<f64>(&r).await.unwrap(), 2.0);
        }
    }
    // The first driver is gone: its named (not detached) actor ended.
    let second = host.connect().await;
    until_gone(&second, "owned").await;
    let kept = second.get_actor("kept").await.unwrap();
    let r = kept.call("add").arg(1.0).submit().unwrap();
    assert_eq!(second.get::<f64>(&r).await.unwrap(), 3.0);
    kept.kill().await.unwrap();
    until_gone(&second, "kept").await;
}

#[tokio::test]
async fn detached_actors_outlive_their_creator_node() {
    let mut c = cluster3().await;
    let on_a = c.a.connect().await;
    let m = on_a.register_file(guest("nested")).await.unwrap();
    let nodes = node_ids(&on_a).await;
    let b = id_of(&nodes, &c.b);
    for (name, lifetime) in [("owned", Lifetime::Owned), ("kept", Lifetime::Detached)] {
        let actor = on_a
            .actor(&m, "Counter")
            .arg(1.0)
            .name(name)
            .lifetime(lifetime)
            .strategy(on(&b))
            .create()
            .await
            .unwrap();
        // Created on b (a create returns once placed; the creation itself
        // travels from a to b after that).
        let r = actor.call("total").submit().unwrap();
        assert_eq!(on_a.get::<f64>(&r).await.unwrap(), 1.0);
    }
    // Node a, which created both (and ran their driver), dies.
    c.a.kill().unwrap();
    let driver = c.head.connect().await;
    tokio::time::sleep(NODE_TIMEOUT).await;
    until_gone(&driver, "owned").await;
    let kept = driver.get_actor("kept").await.unwrap();
    let r = kept.call("add").arg(1.0).submit().unwrap();
    assert_eq!(
        get_within(&driver, &r, Duration::from_secs(20))
            .await
            .unwrap(),
        2.0
    );
}
