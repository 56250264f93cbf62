//! A driver whose node (the head) is SIGKILLed and restarted on the same
//! data directory and port reconnects by itself: the same `Cluster` value
//! runs tasks again, an old handle to a detached named actor on a worker
//! still answers, and an object that lived only in the old session is
//! `OBJECT_LOST` (never a hang). A driver whose node stays down gives up
//! after its `reconnect_timeout` with `NODE_DIED` naming the node. (A
//! driver connected to a worker does not notice a head restart at all:
//! `head_restart.rs` runs tasks and actor calls through one while the head
//! is down.)

use std::time::{Duration, Instant};

use reef::{ConnectOptions, ErrorCode, Lifetime, Strategy};
use reef_testkit::cluster3::{id_of, node_ids};
use reef_testkit::{free_port, guest, HostProcess};

/// Waits until `driver`'s node sees `want` nodes alive.
async fn wait_for_alive(driver: &reef::Cluster, want: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let nodes = node_ids(driver).await;
        if nodes.iter().filter(|(_, _, s)| s == "alive").count() == want {
            return;
        }
        assert!(Instant::now() < deadline, "the cluster is {nodes:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_driver_on_the_head_reconnects_after_the_head_restarts() {
    let (head_dir, worker_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let port = free_port();
    let head_args = [
        "--heartbeat-ms",
        "200",
        "--node-timeout-ms",
        "8000",
        "--num-cpus",
        "1",
    ];
    let mut head = HostProcess::start_on(head_dir.path(), port, &head_args).unwrap();
    let worker = HostProcess::start_worker(worker_dir.path(), &head, &["--num-cpus", "2"]);

    let driver = head.connect().await;
    wait_for_alive(&driver, 2).await;
    let m = driver.register_file(guest("demo")).await.unwrap();
    let worker_id = id_of(&node_ids(&driver).await, &worker);
    let acc = driver
        .actor(&m, "Accumulator")
        .arg(1.0)
        .name("survivor")
        .lifetime(Lifetime::Detached)
        .strategy(Strategy::NodeAffinity {
            node_id: worker_id.clone(),
            soft: false,
        })
        .create()
        .await
        .unwrap();
    let first = acc.call("add").arg(1.0).submit().unwrap();
    assert_eq!(driver.get::<f64>(&first).await.unwrap(), 2.0);
    // Objects of this session, on the head alone: a put, and a result.
    let put = driver.put(&7.0).await.unwrap();
    let sum = driver.task(&m, "add").arg(1.0).arg(2.0).submit().unwrap();
    assert_eq!(driver.get::<f64>(&sum).await.unwrap(), 3.0);

    head.kill().unwrap();
    let head = HostProcess::start_on(head_dir.path(), port, &head_args).unwrap();

    // An async call waits for the new session and runs on it (registering
    // is idempotent: the module is the one the control plane kept).
    let again = driver.register_file(guest("demo")).await.unwrap();
    assert_eq!(again.hash, m.hash);
    driver.wait_connected().await.unwrap();
    // The worker is back in the restarted head's view.
    wait_for_alive(&driver, 2).await;

    // Tasks run on the new session.
    let refs: Vec<_> = (0..20)
        .map(|i| {
            driver
                .task(&m, "add")
                .arg(i as f64)
                .arg(1.0)
                .submit()
                .unwrap()
        })
        .collect();
    let sums: Vec<f64> = driver.get_many(&refs).await.unwrap();
    assert_eq!(sums, (0..20).map(|i| i as f64 + 1.0).collect::<Vec<_>>());

    // The old handle to the detached actor still answers, with its state;
    // so does the name.
    let after = acc.call("add").arg(1.0).submit().unwrap();
    assert_eq!(driver.get::<f64>(&after).await.unwrap(), 3.0);
    let found = driver.get_actor("survivor").await.unwrap();
    assert_eq!(found.id(), acc.id());

    // The old session's objects are gone, with a typed error at once.
    for old in [&put, &sum] {
        let e = driver.get::<f64>(old).await.unwrap_err();
        assert_eq!(e.code, ErrorCode::ObjectLost, "{e}");
        assert!(e.message.contains("earlier session"), "{e}");
    }
    let (ready, _) = driver
        .wait(std::slice::from_ref(&put), 1, Some(Duration::ZERO))
        .await
        .unwrap();
    assert_eq!(ready.len(), 1, "a lost object counts as ready");
    // Passing one as an argument fails at submission.
    let e = driver.task(&m, "add").arg(put.clone()).arg(1.0).submit();
    assert_eq!(e.unwrap_err().code, ErrorCode::ObjectLost);
    // New objects work.
    let fresh = driver.put(&8.0).await.unwrap();
    assert_eq!(driver.get::<f64>(&fresh).await.unwrap(), 8.0);
    acc.kill().await.unwrap();
    drop(head);
}

#[tokio::test]
async fn a_driver_gives_up_after_its_reconnect_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let mut head = HostProcess::start(dir.path(), &[]);
    let options = ConnectOptions::default()
        .token(&head.token())
        .reconnect_timeout(Duration::from_secs(2));
    let driver = reef::Cluster::connect_with(&head.address, options)
        .await
        .unwrap();
    let m = driver.register_file(guest("demo")).await.unwrap();
    let r = driver.task(&m, "add").arg(1.0).arg(2.0).submit().unwrap();
    assert_eq!(driver.get::<f64>(&r).await.unwrap(), 3.0);
    // A get in flight when the node dies fails (typed, naming the node)
    // rather than hanging.
    let bad = driver.register_file(guest("bad")).await.unwrap();
    let looping = driver.task(&bad, "loop_forever").submit().unwrap();
    let in_flight = tokio::spawn({
        let driver = driver.clone();
        async move { driver.get_bytes(&looping).await.map(|_| ()) }
    });
    // Let the get be sent. (Were it not yet, it would wait for the new
    // session and fail when the driver gives up: typed and naming the node
    // as well.)
    tokio::task::yield_now().await;
    driver.status().await.unwrap();

    head.kill().unwrap();
    let e = in_flight.await.unwrap().unwrap_err();
    assert_eq!(e.code, ErrorCode::NodeDied, "{e}");
    assert!(e.message.contains(&head.address), "{e}");
    // The driver sees the session break when its reader next runs, then
    // gives up 2 s later.
    let deadline = Instant::now() + Duration::from_secs(30);
    let e = loop {
        match driver.wait_connected().await {
            Err(e) => break e,
            Ok(()) => {
                assert!(Instant::now() < deadline, "the break went unnoticed");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    };
    assert_eq!(e.code, ErrorCode::NodeDied, "{e}");
    assert!(e.message.contains("gave up reconnecting"), "{e}");
    assert!(e.message.contains(&head.address), "{e}");
    // Every later call fails the same way, async or not.
    let e = driver.put(&1.0).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::NodeDied, "{e}");
    assert!(e.message.contains(&head.address), "{e}");
    let e = driver
        .task(&m, "add")
        .arg(1.0)
        .arg(2.0)
        .submit()
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::NodeDied, "{e}");
    assert!(driver.status().await.is_err());
}
