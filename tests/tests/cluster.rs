//! A 3-node cluster of real `host` processes on 127.0.0.1: a head and two
//! workers, each with its own port, arena and data directory.

use std::time::{Duration, Instant};

use reef::{ErrorCode, Strategy};
use reef_testkit::cluster3::{cluster3, id_of, node_ids, NODE_TIMEOUT};
use reef_testkit::{guest, HostProcess};

#[tokio::test]
async fn the_cluster_forms_and_status_shows_every_node() {
    let c = cluster3().await;
    let driver = c.a.connect().await;
    let nodes = node_ids(&driver).await;
    assert_eq!(nodes.len(), 3, "{nodes:?}");
    assert!(
        nodes.iter().all(|(_, _, state)| state == "alive"),
        "{nodes:?}"
    );
    let out = c.b.cli(&["status"]);
    let text = String::from_utf8_lossy(&out.stdout);
    for node in [&c.head, &c.a, &c.b] {
        assert!(text.contains(&node.address), "{text}");
    }
    assert!(text.contains("head"), "{text}");
}

#[tokio::test]
async fn a_dag_spread_over_all_nodes_returns_correct_results() {
    let c = cluster3().await;
    let driver = c.head.connect().await;
    let m = driver.register_file(guest("dag")).await.unwrap();
    let n = 1000u64;
    let spread = || Strategy::Spread;
    let nodes = node_ids(&driver).await;
    // Scaled copies pinned round robin (so every node surely works), sums spread.
    let pinned = |k: usize| Strategy::NodeAffinity {
        node_id: nodes[k % nodes.len()].1.clone(),
        soft: false,
    };
    let xs = driver
        .task(&m, "make_range")
        .arg(n)
        .strategy(spread())
        .submit()
        .unwrap();
    let mut sums = Vec::new();
    for k in 0..12 {
        let scaled = driver
            .task(&m, "scale")
            .arg(&xs)
            .arg(k as f64)
            .strategy(pinned(k))
            .submit()
            .unwrap();
        sums.push(
            driver
                .task(&m, "sum")
                .arg(&scaled)
                .strategy(spread())
                .submit()
                .unwrap(),
        );
    }
    let base = (n - 1) as f64 * n as f64 / 2.0;
    for (k, sum) in sums.iter().enumerate() {
        assert_eq!(driver.get::<f64>(sum).await.unwrap(), base * k as f64);
    }
    // Every node ran some of it: each fetched the module by hash.
    for node in [&c.head, &c.a, &c.b] {
        assert!(node.has_module(), "{} ran nothing", node.address);
    }
}

#[tokio::test]
async fn a_task_pulls_an_object_held_by_another_node_once() {
    let c = cluster3().await;
    let driver = c.head.connect().await;
    let m = driver.register_file(guest("demo")).await.unwrap();
    let nodes = node_ids(&driver).await;
    let on_a = Strategy::NodeAffinity {
        node_id: id_of(&nodes, &c.a),
        soft: false,
    };
    let xs: Vec<f64> = (0..1_000_000u64).map(|i| i as f64).collect();
    let data = driver.put_f64s(&xs).await.unwrap();
    let size = 8_000_000u64;
    // Two readers on node a at once, then a third later: one transfer.
    let parts: Vec<_> = (0..3)
        .map(|q| {
            driver
                .task(&m, "sum_slice")
                .arg(&data)
                .arg(q * 250_000u64)
                .arg((q + 1) * 250_000u64)
                .strategy(on_a.clone())
                .submit()
                .unwrap()
        })
        .collect();
    let sums: Vec<f64> = driver.get_many(&parts).await.unwrap();
    for (q, sum) in sums.iter().enumerate() {
        let q = q as u64;
        let expected: f64 = (q * 250_000..(q + 1) * 250_000).map(|i| i as f64).sum();
        assert_eq!(*sum, expected);
    }
    let again = driver
        .task(&m, "sum_slice")
        .arg(&data)
        .arg(0u64)
        .arg(1_000_000u64)
        .strategy(on_a.clone())
        .submit()
        .unwrap();
    assert_eq!(
        driver.get::<f64>(&again).await.unwrap(),
        xs.iter().sum::<f64>()
    );
    let a_status = c.a.connect().await.status().await.unwrap();
    let me = a_status.nodes.iter().find(|n| n.this_node).unwrap();
    assert_eq!(
        me.bytes_pulled, size,
        "node a pulled the 8 MB object exactly once"
    );
    // Node b needed nothing and pulled nothing.
    let b_status = c.b.connect().await.status().await.unwrap();
    assert_eq!(
        b_status
            .nodes
            .iter()
            .find(|n| n.this_node)
            .unwrap()
            .bytes_pulled,
        0
    );
}

#[tokio::test]
async fn large_results_stay_where_they_were_made_until_needed() {
    let c = cluster3().await;
    let driver = c.head.connect().await;
    let m = driver.register_file(guest("demo")).await.unwrap();
    let nodes = node_ids(&driver).await;
    let (on_a, on_b) = (
        Strategy::NodeAffinity {
            node_id: id_of(&nodes, &c.a),
            soft: false,
        },
        Strategy::NodeAffinity {
            node_id: id_of(&nodes, &c.b),
            soft: false,
        },
    );
    let big = vec![7u8; 3 << 20];
    // echo on a makes a 3 MiB result that stays on a; view_len on b pulls it from a.
    let input = driver.put_bytes(&big).await.unwrap();
    let made = driver
        .task(&m, "echo")
        .arg(&input)
        .strategy(on_a)
        .submit()
        .unwrap();
    let len = driver
        .task(&m, "view_len")
        .arg(&made)
        .strategy(on_b)
        .submit()
        .unwrap();
    assert_eq!(driver.get::<u64>(&len).await.unwrap(), 3 << 20);
    // The driver reads it too (the head pulls it).
    assert_eq!(&driver.get_bytes(&made).await.unwrap()[..], &big[..]);
}

#[tokio::test]
async fn a_killed_node_is_declared_dead_and_new_work_avoids_it() {
    let mut c = cluster3().await;
    let driver = c.head.connect().await;
    let m = driver.register_file(guest("demo")).await.unwrap();
    let b_id = id_of(&node_ids(&driver).await, &c.b);
    c.b.kill().unwrap();
    let killed = Instant::now();
    loop {
        let nodes = node_ids(&driver).await;
        let state = &nodes.iter().find(|(_, id, _)| id == &b_id).unwrap().2;
        if state.starts_with("dead") {
            break;
        }
        assert!(
            killed.elapsed() < NODE_TIMEOUT + Duration::from_secs(3),
            "node b still {state} {:?} after SIGKILL",
            killed.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // (A killed node is declared dead as soon as its port refuses a
    // connection after three missed heartbeats, well before NODE_TIMEOUT.)
    // New work runs on the live nodes only.
    let refs: Vec<_> = (0..20)
        .map(|i| {
            driver
                .task(&m, "add")
                .arg(i as f64)
                .arg(1.0)
                .strategy(Strategy::Spread)
                .submit()
                .unwrap()
        })
        .collect();
    let sums: Vec<f64> = driver.get_many(&refs).await.unwrap();
    assert_eq!(sums, (0..20).map(|i| i as f64 + 1.0).collect::<Vec<_>>());
    // Asking for the dead node by id fails clearly.
    let on_b = Strategy::NodeAffinity {
        node_id: b_id.clone(),
        soft: false,
    };
    let err = driver
        .get::<f64>(
            &driver
                .task(&m, "add")
                .arg(1.0)
                .arg(1.0)
                .strategy(on_b)
                .submit()
                .unwrap(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::NodeDied, "{err}");
    let soft = Strategy::NodeAffinity {
        node_id: b_id,
        soft: true,
    };
    let ok = driver
        .task(&m, "add")
        .arg(1.0)
        .arg(1.0)
        .strategy(soft)
        .submit()
        .unwrap();
    assert_eq!(driver.get::<f64>(&ok).await.unwrap(), 2.0);
    // Drop would close b's (already dead) stdin: fine.
}

#[tokio::test]
async fn infeasible_everywhere_fails_at_once_and_unknown_nodes_are_named() {
    let c = cluster3().await;
    let driver = c.a.connect().await;
    let m = driver.register_file(guest("demo")).await.unwrap();
    let err = driver
        .get::<f64>(
            &driver
                .task(&m, "add")
                .arg(1.0)
                .arg(2.0)
                .num_cpus(64.0)
                .submit()
                .unwrap(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::Infeasible, "{err}");
    let nowhere = Strategy::NodeAffinity {
        node_id: "no-such-node".into(),
        soft: false,
    };
    let err = driver
        .get::<f64>(
            &driver
                .task(&m, "add")
                .arg(1.0)
                .arg(2.0)
                .strategy(nowhere)
                .submit()
                .unwrap(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::UnknownNode, "{err}");
    assert!(err.message.contains("no-such-node"), "{err}");
}

#[tokio::test]
async fn nodes_with_a_wrong_or_missing_token_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let head = HostProcess::start(dir.path(), &[]);
    let wrong = tempfile::tempdir().unwrap();
    std::fs::write(wrong.path().join("bad-token"), "not-the-token").unwrap();
    let bad = wrong.path().join("bad-token");
    let err = HostProcess::spawn(
        wrong.path(),
        reef_testkit::free_port(),
        false,
        &[
            "--address",
            &head.address,
            "--token-file",
            bad.to_str().unwrap(),
        ],
    )
    .expect_err("a node with a wrong token must not start");
    assert!(err.contains("wrong cluster token"), "{err}");
    let none = tempfile::tempdir().unwrap();
    let err = HostProcess::spawn(
        none.path(),
        reef_testkit::free_port(),
        false,
        &["--address", &head.address],
    )
    .expect_err("a node without a token must not start");
    assert!(err.contains("cluster token"), "{err}");
    // A driver with a wrong token is refused too.
    let err = reef::Cluster::connect_with_token(&head.address, "not-the-token")
        .await
        .err()
        .unwrap();
    assert_eq!(err.code, ErrorCode::Unauthenticated, "{err}");
}

#[tokio::test]
async fn spread_dependents_of_spread_roots_finish() {
    let c = cluster3().await;
    let driver = c.head.connect().await;
    let m = driver.register_file(guest("demo")).await.unwrap();
    let mut leaves = Vec::new();
    // REEF_TEST_ROOTS/REEF_TEST_LEAVES scale it up by hand.
    let size = |var: &str, default: usize| {
        std::env::var(var)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let (roots, per_root) = (size("REEF_TEST_ROOTS", 4), size("REEF_TEST_LEAVES", 5));
    for r in 0..roots {
        let root = driver
            .task(&m, "add")
            .arg(r as f64)
            .arg(0.0)
            .strategy(Strategy::Spread)
            .submit()
            .unwrap();
        for _ in 0..per_root {
            leaves.push(
                driver
                    .task(&m, "echo")
                    .arg(&root)
                    .strategy(Strategy::Spread)
                    .submit()
                    .unwrap(),
            );
        }
    }
    let got = tokio::time::timeout(
        Duration::from_secs(30),
        driver.get_many_bytes(&leaves.iter().collect::<Vec<_>>(), None),
    )
    .await
    .expect("spread dependents did not finish in 30 s")
    .unwrap();
    assert_eq!(got.len(), roots * per_root);
}

#[tokio::test]
async fn a_module_registered_through_one_node_runs_through_another() {
    let c = cluster3().await;
    let on_a = c.a.connect().await;
    let m = on_a.register_file(guest("demo")).await.unwrap();
    // A driver on b never registered it: b fetches it by hash.
    let on_b = c.b.connect().await;
    let r = on_b.task(&m, "add").arg(2.0).arg(3.0).submit().unwrap();
    assert_eq!(on_b.get::<f64>(&r).await.unwrap(), 5.0);
    // A hash nobody registered is still an unknown module.
    let mut missing = m.clone();
    missing.hash = "0".repeat(64);
    let r = on_b
        .task(&missing, "add")
        .arg(1.0)
        .arg(1.0)
        .submit()
        .unwrap();
    let e = on_b.get::<f64>(&r).await.err().unwrap();
    assert_eq!(e.code, ErrorCode::UnknownModule, "{e}");
}

/// The jobs the control plane of `head` has recorded, once `done` accepts
/// them (fails after 10 s).
async fn jobs_when(
    head: &HostProcess,
    done: impl Fn(&[reef_proto::JobInfo]) -> bool,
) -> Vec<reef_proto::JobInfo> {
    use reef_gcs::ControlPlane;
    let control_plane =
        reef_gcs::GcsClient::connect_lazy(&head.address, &head.node_token()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let jobs = control_plane.list_jobs().await.unwrap();
        if done(&jobs) {
            return jobs;
        }
        assert!(Instant::now() < deadline, "{jobs:#?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn every_driver_session_on_every_node_is_a_job_with_its_address() {
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let head = HostProcess::start(dirs[0].path(), &["--num-cpus", "1"]);
    let worker = HostProcess::start_worker(dirs[1].path(), &head, &["--num-cpus", "1"]);
    let before = reef_gcs::now_millis();
    let on_worker = worker.connect().await;
    let nodes = node_ids(&on_worker).await;
    let (head_id, worker_id) = (id_of(&nodes, &head), id_of(&nodes, &worker));
    // This process is on the node's machine: its session moved from TCP to
    // the node's Unix socket, and each was a job of the worker.
    let unix = format!("unix:pid {}", std::process::id());
    let running = |jobs: &[reef_proto::JobInfo], node: &str| {
        jobs.iter()
            .find(|j| j.node_id == node && j.driver_address == unix && j.ended_at_ms == 0)
            .cloned()
    };
    // Both jobs are recorded in the background, in either order.
    let tcp_job = |jobs: &[reef_proto::JobInfo]| {
        jobs.iter()
            .find(|j| j.node_id == worker_id && j.driver_address.starts_with("127.0.0.1:"))
            .cloned()
    };
    let jobs = jobs_when(&head, |jobs| {
        running(jobs, &worker_id).is_some() && tcp_job(jobs).is_some()
    })
    .await;
    let job = running(&jobs, &worker_id).unwrap();
    assert!(job.started_at_ms >= before, "{job:?}");
    let tcp = tcp_job(&jobs).unwrap();
    assert_ne!(tcp.job_id, job.job_id);
    let port: u16 = tcp
        .driver_address
        .strip_prefix("127.0.0.1:")
        .and_then(|port| port.parse().ok())
        .unwrap_or_else(|| panic!("{tcp:?}"));
    assert_ne!(port, worker.port, "the driver's port, not the node's");

    // The head records its own drivers' jobs the same way (in process).
    let on_head = head.connect().await;
    jobs_when(&head, |jobs| running(jobs, &head_id).is_some()).await;

    // A driver that leaves ends its job, with the time it left.
    let leaving = reef_gcs::now_millis();
    drop(on_worker);
    let jobs = jobs_when(&head, |jobs| {
        jobs.iter()
            .any(|j| j.job_id == job.job_id && j.ended_at_ms != 0)
    })
    .await;
    let seen = reef_gcs::now_millis();
    let ended = jobs.iter().find(|j| j.job_id == job.job_id).unwrap();
    assert!(
        (leaving..=seen).contains(&ended.ended_at_ms),
        "{ended:?} ended outside {leaving}..={seen}"
    );
    assert!(running(&jobs, &head_id).is_some(), "{jobs:#?}");
    drop(on_head);
}
