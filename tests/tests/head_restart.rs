//! The head SIGKILLed and restarted mid-workload, with the control plane's
//! state in its data directory (the default file store) and in a Redis
//! server (a new head process, in a new data directory, on the same Redis):
//! the workload completes, and the named actor on a worker, the placement
//! group, the registered module, the jobs and the KV entries survive. Work
//! submitted on a worker while the head is down runs.

use std::path::Path;
use std::time::{Duration, Instant};

use reef::{PlacementStrategy, Strategy};
use reef_gcs::{ControlPlane, GcsClient};
use reef_proto::PlacementGroupState;
use reef_testkit::cluster3::{id_of, node_ids};
use reef_testkit::redis::RedisServer;
use reef_testkit::{free_port, guest, HostProcess};

/// Tasks in the workload, submitted through a worker.
const TASKS: usize = 2_000;

fn on(node_id: &str) -> Strategy {
    Strategy::NodeAffinity {
        node_id: node_id.to_string(),
        soft: false,
    }
}

/// Waits until `driver`'s node sees every node of `want` (by address)
/// alive, and no other alive node.
async fn wait_for_nodes(driver: &reef::Cluster, want: &[&HostProcess]) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let nodes = node_ids(driver).await;
        let alive: Vec<&String> = nodes
            .iter()
            .filter(|(_, _, s)| s == "alive")
            .map(|(a, _, _)| a)
            .collect();
        if alive.len() == want.len() && want.iter().all(|n| alive.contains(&&n.address)) {
            return;
        }
        assert!(Instant::now() < deadline, "the cluster is {nodes:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Where the restarted head's control plane finds its state.
enum Store {
    /// The default file store, in the head's data directory.
    File,
    /// A Redis server; the restarted head gets a new data directory.
    Redis(RedisServer),
}

async fn head_restart_keeps_the_cluster(store: Store) {
    let dirs: Vec<_> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let port = free_port();
    let mut head_args = vec![
        "--heartbeat-ms",
        "200",
        "--node-timeout-ms",
        "8000",
        "--num-cpus",
        "1",
    ];
    if let Store::Redis(redis) = &store {
        head_args.extend_from_slice(&["--gcs-storage", &redis.url]);
    }
    let mut head = HostProcess::start_on(dirs[0].path(), port, &head_args).unwrap();
    let worker_args = ["--num-cpus", "2"];
    let a = HostProcess::start_worker(dirs[1].path(), &head, &worker_args);
    let b = HostProcess::start_worker(dirs[2].path(), &head, &worker_args);
    let token_file = head.token_file.clone();

    let on_a = a.connect().await;
    wait_for_nodes(&on_a, &[&head, &a, &b]).await;
    let m = on_a.register_file(guest("demo")).await.unwrap();
    let nodes = node_ids(&on_a).await;
    let (a_id, b_id) = (id_of(&nodes, &a), id_of(&nodes, &b));
    let acc = on_a
        .actor(&m, "Accumulator")
        .arg(1.0)
        .name("survivor")
        .strategy(on(&b_id))
        .create()
        .await
        .unwrap();
    let first = acc.call("add").arg(1.0).submit().unwrap();
    assert_eq!(on_a.get::<f64>(&first).await.unwrap(), 2.0);
    let mut pg = on_a
        .placement_group(PlacementStrategy::Pack)
        .bundle([("CPU", 1.0)])
        .on_nodes([a_id.clone()])
        .create()
        .await
        .unwrap();
    pg.ready(Duration::from_secs(10)).await.unwrap();
    let gcs = GcsClient::connect_lazy(&head.address, &head.node_token()).unwrap();
    gcs.kv_put("app", "answer", "42".into(), true)
        .await
        .unwrap();
    let jobs_before: Vec<u64> = gcs
        .list_jobs()
        .await
        .unwrap()
        .iter()
        .map(|j| j.job_id)
        .collect();
    assert!(!jobs_before.is_empty());

    // The workload, through worker A; the head dies under it.
    let refs: Vec<_> = (0..TASKS)
        .map(|i| {
            on_a.task(&m, "add")
                .arg(i as f64)
                .arg(1.0)
                .submit()
                .unwrap()
        })
        .collect();
    head.kill().unwrap();
    // Not vacuous: work was still outstanding when the head died.
    let (ready, _) = on_a.wait(&refs, TASKS, Some(Duration::ZERO)).await.unwrap();
    assert!(
        ready.len() < TASKS,
        "the workload ended before the head died"
    );

    // While the head is down: tasks placed on A run, and calls go straight
    // to the actor's node.
    let down: Vec<_> = (0..50)
        .map(|i| {
            on_a.task(&m, "add")
                .arg(i as f64)
                .arg(2.0)
                .strategy(on(&a_id))
                .submit()
                .unwrap()
        })
        .collect();
    let during = acc.call("add").arg(1.0).submit().unwrap();
    assert_eq!(on_a.get::<f64>(&during).await.unwrap(), 3.0);
    let sums: Vec<f64> = on_a.get_many(&down).await.unwrap();
    assert_eq!(sums, (0..50).map(|i| i as f64 + 2.0).collect::<Vec<_>>());

    // The head comes back: on its data directory (its token is there), or
    // as a new process in a new one on the same Redis, given the token.
    let restart_dir: &Path = match &store {
        Store::File => dirs[0].path(),
        Store::Redis(_) => {
            std::fs::copy(&token_file, dirs[3].path().join("token")).unwrap();
            dirs[3].path()
        }
    };
    let head = HostProcess::start_on(restart_dir, port, &head_args).unwrap();

    let results: Vec<f64> = on_a.get_many(&refs).await.unwrap();
    assert_eq!(
        results,
        (0..TASKS).map(|i| i as f64 + 1.0).collect::<Vec<_>>()
    );
    wait_for_nodes(&on_a, &[&head, &a, &b]).await;

    // The named actor resolves, from any node, with its state.
    let on_b = b.connect().await;
    let found = on_b.get_actor("survivor").await.unwrap();
    let after = found.call("add").arg(1.0).submit().unwrap();
    assert_eq!(on_b.get::<f64>(&after).await.unwrap(), 4.0);
    let again = on_a.get_actor("survivor").await.unwrap();
    let total = again.call("total").submit().unwrap();
    assert_eq!(on_a.get::<f64>(&total).await.unwrap(), 4.0);

    // The placement group is still created on A, and runs work.
    let info = gcs.pg_get(pg.id()).await.unwrap();
    assert_eq!(
        info.state,
        PlacementGroupState::PgCreated as i32,
        "{info:?}"
    );
    assert_eq!(info.bundle_nodes, vec![a_id.clone()]);
    let where_ = on_a
        .task(&m, "node_id")
        .strategy(pg.bundle(0))
        .submit()
        .unwrap();
    assert_eq!(on_a.get::<String>(&where_).await.unwrap(), a_id);

    // The module, the KV entry and the jobs are there; a new node fetches
    // the module from the restarted control plane.
    assert_eq!(
        gcs.kv_get("app", "answer").await.unwrap().as_deref(),
        Some(&b"42"[..])
    );
    // Every job recorded before the restart is still listed.
    let jobs_after: Vec<u64> = gcs
        .list_jobs()
        .await
        .unwrap()
        .iter()
        .map(|j| j.job_id)
        .collect();
    for job in &jobs_before {
        assert!(jobs_after.contains(job), "job {job} lost: {jobs_after:?}");
    }
    assert!(!gcs.get_module(&m.hash).await.unwrap().is_empty());
    let c_dir = tempfile::tempdir().unwrap();
    let c = HostProcess::start_worker(c_dir.path(), &head, &worker_args);
    let on_c = c.connect().await;
    wait_for_nodes(&on_c, &[&head, &a, &b, &c]).await;
    let c_id = id_of(&node_ids(&on_c).await, &c);
    let there = on_c
        .task(&m, "node_id")
        .strategy(on(&c_id))
        .submit()
        .unwrap();
    assert_eq!(on_c.get::<String>(&there).await.unwrap(), c_id);
    // And the control plane takes new work: a new named actor.
    let fresh = on_b
        .actor(&m, "Accumulator")
        .arg(10.0)
        .name("fresh")
        .create()
        .await
        .unwrap();
    let r = fresh.call("total").submit().unwrap();
    assert_eq!(on_b.get::<f64>(&r).await.unwrap(), 10.0);
    pg.remove().await.unwrap();
    drop(store);
}

#[tokio::test]
async fn a_head_restarted_on_its_data_directory_loses_nothing() {
    head_restart_keeps_the_cluster(Store::File).await;
}

#[tokio::test]
async fn a_new_head_on_the_same_redis_takes_the_cluster_over() {
    head_restart_keeps_the_cluster(Store::Redis(RedisServer::start())).await;
}
