//! Lineage reconstruction against real `host` processes: an object made by
//! a task from another task's object, both on worker nodes that are then
//! SIGKILLed, is rebuilt by its owner running both tasks again; one whose
//! task allows no retry fails with OBJECT_LOST saying why; another tenant's
//! flood past the lineage cap evicts its own lineage, not a tenant's.

use std::time::{Duration, Instant};

use reef::{Cluster, ErrorCode, ListOptions, ObjectRef, Strategy};
use reef_testkit::cluster3::{cluster3, id_of, node_ids, NODE_TIMEOUT};
use reef_testkit::{guest, HostProcess};

/// Elements of `make_range`'s object: 160 KB, above the inline threshold,
/// so results stay on the node that made them.
const N: u64 = 20_000;

/// Soft affinity: runs on `node_id` while it is alive.
fn prefer(node_id: &str) -> Strategy {
    Strategy::NodeAffinity {
        node_id: node_id.to_string(),
        soft: true,
    }
}

/// Waits until the driver's node sees `nodes` dead.
async fn wait_dead(driver: &Cluster, nodes: &[&HostProcess]) {
    let deadline = Instant::now() + NODE_TIMEOUT + Duration::from_secs(10);
    loop {
        let view = node_ids(driver).await;
        let dead = nodes.iter().all(|n| {
            view.iter()
                .any(|(address, _, state)| address == &n.address && state != "alive")
        });
        if dead {
            return;
        }
        assert!(Instant::now() < deadline, "still alive: {view:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The f64s of an object made by `make_range`/`scale`.
async fn f64s(driver: &Cluster, r: &ObjectRef) -> reef::Result<Vec<f64>> {
    let data = tokio::time::timeout(Duration::from_secs(60), driver.get_bytes(r))
        .await
        .expect("get still pending after 60 s")?;
    Ok(data
        .chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
        .collect())
}

/// The nodes (by id) that ran `function` to the end, as the cluster lists them.
async fn ran_on(driver: &Cluster, function: &str) -> Vec<(String, u32)> {
    driver
        .list_tasks(&ListOptions::new().filter("function", function))
        .await
        .unwrap()
        .rows
        .into_iter()
        .filter(|t| t.state == "finished")
        .map(|t| (t.node_id, t.attempt))
        .collect()
}

#[tokio::test]
async fn an_object_is_rebuilt_through_two_levels_of_lineage() {
    let mut c = cluster3().await;
    let driver = c.head.connect().await;
    let m = driver.register_file(guest("dag")).await.unwrap();
    let nodes = node_ids(&driver).await;
    let (head, x, y) = (
        id_of(&nodes, &c.head),
        id_of(&nodes, &c.a),
        id_of(&nodes, &c.b),
    );

    // a on X, b = scale(a) on Y; c = scale(a) too, with no retry allowed.
    let a = driver
        .task(&m, "make_range")
        .arg(N)
        .strategy(prefer(&x))
        .submit()
        .unwrap();
    let b = driver
        .task(&m, "scale")
        .arg(&a)
        .arg(2.0)
        .strategy(prefer(&y))
        .submit()
        .unwrap();
    let c0 = driver
        .task(&m, "scale")
        .arg(&a)
        .arg(3.0)
        .strategy(prefer(&y))
        .max_retries(0)
        .submit()
        .unwrap();
    // Sealed where they ran, without a copy on the head.
    let (ready, _) = driver
        .wait(&[b.clone(), c0.clone()], 2, Some(Duration::from_secs(30)))
        .await
        .unwrap();
    assert_eq!(ready.len(), 2);
    assert_eq!(ran_on(&driver, "make_range").await, vec![(x.clone(), 1)]);
    let scaled: Vec<String> = ran_on(&driver, "scale")
        .await
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(scaled, vec![y.clone(), y.clone()]);

    c.a.kill().unwrap();
    c.b.kill().unwrap();
    wait_dead(&driver, &[&c.a, &c.b]).await;

    // Both holders are gone: the head runs make_range, then scale, again.
    let values = f64s(&driver, &b).await.unwrap();
    assert_eq!(values.len(), N as usize);
    assert!(values.iter().enumerate().all(|(i, v)| *v == 2.0 * i as f64));
    assert_eq!(ran_on(&driver, "make_range").await, vec![(head.clone(), 1)]);
    assert_eq!(ran_on(&driver, "scale").await, vec![(head.clone(), 1)]);
    let log = c.head.log();
    let rebuilt: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("rebuilding lost object"))
        .collect();
    assert!(
        rebuilt.iter().any(|l| l.contains("make_range"))
            && rebuilt.iter().any(|l| l.contains("scale")),
        "{rebuilt:?}"
    );

    // max_retries 0 allows no rebuild either.
    let e = f64s(&driver, &c0).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::ObjectLost, "{e}");
    assert!(
        e.message.contains("reconstruction attempts exhausted"),
        "{e}"
    );
}

/// The lineage a node keeps is capped (`--lineage-bytes`), and past the cap
/// the tenant keeping the most loses its oldest entries first: tenant B's
/// flood of tasks (whose results it holds) evicts B's own lineage, and A's
/// object, older than all of B's, is still rebuilt when the worker holding
/// it dies.
#[tokio::test]
async fn another_tenants_flood_does_not_evict_a_tenants_lineage() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let timeout = NODE_TIMEOUT.as_millis().to_string();
    let head = HostProcess::start(
        dirs[0].path(),
        &[
            "--heartbeat-ms",
            "200",
            "--node-timeout-ms",
            timeout.as_str(),
            "--lineage-bytes",
            "64KiB",
        ],
    );
    let mut worker = HostProcess::start_worker(dirs[1].path(), &head, &[]);
    let token_a = head.add_tenant("team-a", dirs[2].path(), &[]);
    let token_b = head.add_tenant("team-b", dirs[2].path(), &[]);
    let a = head.connect_as(&token_a).await;
    let b = head.connect_as(&token_b).await;
    let m_a = a.register_file(guest("dag")).await.unwrap();
    let m_b = b.register_file(guest("dag")).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let worker_id = loop {
        let nodes = node_ids(&a).await;
        if nodes.len() == 2 {
            break id_of(&nodes, &worker);
        }
        assert!(Instant::now() < deadline, "{nodes:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };

    // A's object, on the worker only; its lineage on the head (its owner).
    let range = a
        .task(&m_a, "make_range")
        .arg(N)
        .strategy(prefer(&worker_id))
        .submit()
        .unwrap();
    a.wait(
        std::slice::from_ref(&range),
        1,
        Some(Duration::from_secs(30)),
    )
    .await
    .unwrap();
    // B's flood: far more lineage than the cap, every result held.
    let flood: Vec<ObjectRef> = (0..2_000)
        .map(|i| {
            b.task(&m_b, "combine")
                .arg(i as f64)
                .arg(1.0)
                .submit()
                .unwrap()
        })
        .collect();
    let sums: Vec<f64> = b.get_many(&flood).await.unwrap();
    assert_eq!(sums[1999], 2000.0);

    worker.kill().unwrap();
    wait_dead(&a, &[&worker]).await;
    let values = f64s(&a, &range).await.unwrap();
    assert_eq!(values.len(), N as usize);
    assert!(values.iter().enumerate().all(|(i, v)| *v == i as f64));
}
