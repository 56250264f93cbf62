//! Actors across a 3-node cluster of real `host` processes: placed by the
//! control plane, called straight on their node, named cluster-wide, and
//! gone with their driver or their node.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use reef::{ErrorCode, Strategy};
use reef_testkit::cluster3::{cluster3, id_of, node_ids, NODE_TIMEOUT};
use reef_testkit::guest;

/// Hard affinity to one node.
fn on(node_id: &str) -> Strategy {
    Strategy::NodeAffinity {
        node_id: node_id.to_string(),
        soft: false,
    }
}

#[tokio::test]
async fn actors_spread_over_every_node_and_keep_call_order() {
    let c = cluster3().await;
    let driver = c.head.connect().await;
    let m = driver.register_file(guest("demo")).await.unwrap();
    let nodes = node_ids(&driver).await;
    let mut homes = BTreeSet::new();
    let mut accs = Vec::new();
    for _ in 0..6 {
        let w = driver
            .actor(&m, "Where")
            .strategy(Strategy::Spread)
            .create()
            .await
            .unwrap();
        let home = w.call("node").submit().unwrap();
        homes.insert(driver.get::<String>(&home).await.unwrap());
        accs.push(
            driver
                .actor(&m, "Accumulator")
                .arg(0.0)
                .strategy(Strategy::Spread)
                .create()
                .await
                .unwrap(),
        );
    }
    let all: BTreeSet<String> = nodes.iter().map(|(_, id, _)| id.clone()).collect();
    assert_eq!(homes, all, "spread actors must live on every node");
    // 100 calls per actor: each sees the running total, in call order.
    let mut refs = Vec::new();
    for acc in &accs {
        for i in 1..=100 {
            refs.push(acc.call("add").arg(i as f64).submit().unwrap());
        }
    }
    let totals: Vec<f64> = driver.get_many(&refs).await.unwrap();
    for chunk in totals.chunks(100) {
        let expected: Vec<f64> = (1..=100).map(|i| (i * (i + 1) / 2) as f64).collect();
        assert_eq!(chunk, expected.as_slice());
    }
}

#[tokio::test]
async fn named_actors_resolve_from_any_node() {
    let c = cluster3().await;
    let on_a = c.a.connect().await;
    let m = on_a.register_file(guest("demo")).await.unwrap();
    let nodes = node_ids(&on_a).await;
    let b = id_of(&nodes, &c.b);
    let acc = on_a
        .actor(&m, "Accumulator")
        .arg(1.0)
        .name("totals")
        .strategy(on(&b))
        .create()
        .await
        .unwrap();
    let w = on_a
        .actor(&m, "Where")
        .name("where")
        .strategy(on(&b))
        .create()
        .await
        .unwrap();
    assert_eq!(
        on_a.get::<String>(&w.call("node").submit().unwrap())
            .await
            .unwrap(),
        b
    );
    // Another driver on another node finds it by name and calls it.
    let on_head = c.head.connect().await;
    let found = on_head.get_actor("totals").await.unwrap();
    assert_eq!(found.id(), acc.id());
    let r = found.call("add").arg(2.0).submit().unwrap();
    assert_eq!(on_head.get::<f64>(&r).await.unwrap(), 3.0);
    let r = acc.call("add").arg(3.0).submit().unwrap();
    assert_eq!(on_a.get::<f64>(&r).await.unwrap(), 6.0);
    // The name is taken cluster-wide.
    let err = on_head
        .actor(&m, "Accumulator")
        .name("totals")
        .create()
        .await
        .err()
        .expect("a second `totals` must be refused");
    assert_eq!(err.code, ErrorCode::NameTaken, "{err}");
    // Killed from the head's driver: calls from a fail, the name is free.
    found.kill().await.unwrap();
    let r = acc.call("total").submit().unwrap();
    let err = on_a.get::<f64>(&r).await.err().unwrap();
    assert_eq!(err.code, ErrorCode::ActorDead, "{err}");
    let again = on_head
        .actor(&m, "Accumulator")
        .arg(5.0)
        .name("totals")
        .create()
        .await
        .unwrap();
    let r = on_a
        .get_actor("totals")
        .await
        .unwrap()
        .call("total")
        .submit()
        .unwrap();
    assert_eq!(on_a.get::<f64>(&r).await.unwrap(), 5.0);
    again.kill().await.unwrap();
    let err = on_head.get_actor("nobody").await.err().unwrap();
    assert_eq!(err.code, ErrorCode::UnknownActor, "{err}");
}

#[tokio::test]
async fn an_anonymous_actor_dies_with_its_driver_even_on_another_node() {
    let c = cluster3().await;
    let nodes = {
        let d = c.head.connect().await;
        node_ids(&d).await
    };
    let b = id_of(&nodes, &c.b);
    let on_b = c.b.connect().await;
    let count = || async {
        on_b.status()
            .await
            .unwrap()
            .actors
            .iter()
            .filter(|a| a.class == "Accumulator")
            .count()
    };
    {
        let on_a = c.a.connect().await;
        let m = on_a.register_file(guest("demo")).await.unwrap();
        let acc = on_a
            .actor(&m, "Accumulator")
            .strategy(on(&b))
            .create()
            .await
            .unwrap();
        let r = acc.call("add").arg(1.0).submit().unwrap();
        assert_eq!(on_a.get::<f64>(&r).await.unwrap(), 1.0);
        assert_eq!(count().await, 1);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while count().await > 0 {
        assert!(
            Instant::now() < deadline,
            "the actor outlived its driver by 10 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn calls_to_an_actor_on_a_killed_node_fail() {
    let mut c = cluster3().await;
    let driver = c.head.connect().await;
    let m = driver.register_file(guest("demo")).await.unwrap();
    let nodes = node_ids(&driver).await;
    let b = id_of(&nodes, &c.b);
    let acc = driver
        .actor(&m, "Accumulator")
        .strategy(on(&b))
        .create()
        .await
        .unwrap();
    let r = acc.call("add").arg(1.0).submit().unwrap();
    assert_eq!(driver.get::<f64>(&r).await.unwrap(), 1.0);
    c.b.kill().unwrap();
    let deadline = Instant::now() + NODE_TIMEOUT + Duration::from_secs(10);
    loop {
        let r = acc.call("add").arg(1.0).submit().unwrap();
        match tokio::time::timeout(Duration::from_secs(20), driver.get::<f64>(&r)).await {
            Ok(Err(e)) => {
                assert!(
                    matches!(e.code, ErrorCode::NodeDied | ErrorCode::ActorDead),
                    "{e}"
                );
                break;
            }
            Ok(Ok(_)) => {}
            Err(_) => panic!("a call to an actor on a dead node hung"),
        }
        assert!(Instant::now() < deadline, "calls kept succeeding");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Named placement avoids the dead node.
    let w = driver
        .actor(&m, "Where")
        .strategy(Strategy::Spread)
        .create()
        .await
        .unwrap();
    let home = driver
        .get::<String>(&w.call("node").submit().unwrap())
        .await
        .unwrap();
    assert_ne!(home, b);
}
