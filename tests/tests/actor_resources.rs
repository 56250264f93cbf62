//! What an actor reserves for its lifetime: the CPUs it asks for (none by
//! default), its memory and custom resources, on a real one-CPU node.

use std::collections::BTreeMap;
use std::time::Duration;

use reef::CallOptions;
use reef_testkit::{guest, node_with};

/// Whether a one-CPU task submitted now finishes within a few seconds.
async fn a_task_can_run(cluster: &reef::Cluster, m: &reef::Module) -> bool {
    let r = cluster.task(m, "add").arg(1.0).arg(2.0).submit().unwrap();
    let (ready, _) = cluster
        .wait(std::slice::from_ref(&r), 1, Some(Duration::from_secs(5)))
        .await
        .unwrap();
    if ready.is_empty() {
        cluster.cancel(&r).unwrap();
        return false;
    }
    assert_eq!(cluster.get::<f64>(&r).await.unwrap(), 3.0);
    true
}

/// `create` returns once the actor is placed; its first answer means it has
/// started, and so holds its resources. Adds 0 to its total.
async fn started(cluster: &reef::Cluster, actor: &reef::ActorHandle) {
    let r = actor.call("add").arg(0.0).submit().unwrap();
    cluster.get::<f64>(&r).await.unwrap();
}

#[tokio::test]
async fn an_actor_reserves_only_the_cpus_it_asks_for() {
    let cluster = node_with(&["--num-cpus", "1", "--memory", "1GiB", "--resource", "gpu=1"]).await;
    let m = cluster.register_file(guest("demo")).await.unwrap();

    // Only memory: no CPU taken, the task runs beside the actor.
    let memory_only = cluster
        .actor(&m, "Accumulator")
        .options(CallOptions {
            memory: 256 << 20,
            ..Default::default()
        })
        .create()
        .await
        .unwrap();
    started(&cluster, &memory_only).await;
    assert!(
        a_task_can_run(&cluster, &m).await,
        "an actor asking only for memory took the node's CPU"
    );

    // Only a custom resource: no CPU either, but the resource itself is held.
    let gpu_only = cluster
        .actor(&m, "Accumulator")
        .options(CallOptions {
            resources: BTreeMap::from([("gpu".to_string(), 1.0)]),
            ..Default::default()
        })
        .create()
        .await
        .unwrap();
    started(&cluster, &gpu_only).await;
    assert!(
        a_task_can_run(&cluster, &m).await,
        "an actor asking only for a custom resource took the node's CPU"
    );
    let wants_gpu = cluster
        .task(&m, "add")
        .arg(1.0)
        .arg(1.0)
        .resource("gpu", 1.0)
        .submit()
        .unwrap();
    let (ready, _) = cluster
        .wait(
            std::slice::from_ref(&wants_gpu),
            1,
            Some(Duration::from_millis(500)),
        )
        .await
        .unwrap();
    assert!(ready.is_empty(), "the actor's gpu was given to a task");

    // Both actors still serve calls.
    let totals = [
        memory_only.call("add").arg(5.0).submit().unwrap(),
        gpu_only.call("add").arg(7.0).submit().unwrap(),
    ];
    assert_eq!(
        cluster.get_many::<f64>(&totals).await.unwrap(),
        vec![5.0, 7.0]
    );

    // Killing the gpu actor gives its gpu back: the waiting task runs.
    gpu_only.kill().await.unwrap();
    assert_eq!(cluster.get::<f64>(&wants_gpu).await.unwrap(), 2.0);

    // An actor that asks for the CPU holds it while it lives.
    let cpu = cluster
        .actor(&m, "Accumulator")
        .num_cpus(1.0)
        .create()
        .await
        .unwrap();
    started(&cluster, &cpu).await;
    assert!(
        !a_task_can_run(&cluster, &m).await,
        "a task ran while an actor held the only CPU"
    );
}
