//! Placement groups on a 3-node cluster of real `host` processes (2 CPUs
//! each): the four strategies, what cannot fit, work in bundles, removal.

use std::collections::BTreeSet;
use std::time::Duration;

use reef::{ErrorCode, PlacementGroup, PlacementStrategy};
use reef_testkit::cluster3::{cluster3, node_ids};
use reef_testkit::guest;

const READY: Duration = Duration::from_secs(10);

async fn group(
    driver: &reef::Cluster,
    strategy: PlacementStrategy,
    bundles: usize,
    cpus: f64,
) -> reef::Result<PlacementGroup> {
    let mut builder = driver.placement_group(strategy);
    for _ in 0..bundles {
        builder = builder.bundle([("CPU", cpus)]);
    }
    let mut pg = builder.create().await?;
    pg.ready(READY).await?;
    Ok(pg)
}

fn distinct(pg: &PlacementGroup) -> usize {
    pg.bundle_nodes().iter().collect::<BTreeSet<_>>().len()
}

#[tokio::test]
async fn the_four_strategies_place_bundles_as_specified() {
    let c = cluster3().await;
    let driver = c.a.connect().await;

    let pg = group(&driver, PlacementStrategy::StrictSpread, 3, 1.0)
        .await
        .unwrap();
    assert_eq!(pg.bundle_nodes().len(), 3);
    assert_eq!(distinct(&pg), 3, "{:?}", pg.bundle_nodes());
    pg.remove().await.unwrap();

    let pg = group(&driver, PlacementStrategy::StrictPack, 2, 1.0)
        .await
        .unwrap();
    assert_eq!(distinct(&pg), 1, "{:?}", pg.bundle_nodes());
    pg.remove().await.unwrap();

    let pg = group(&driver, PlacementStrategy::Pack, 2, 1.0)
        .await
        .unwrap();
    assert_eq!(distinct(&pg), 1, "PACK uses one node when it can");
    pg.remove().await.unwrap();
    let pg = group(&driver, PlacementStrategy::Pack, 3, 1.0)
        .await
        .unwrap();
    assert_eq!(
        distinct(&pg),
        2,
        "PACK spills to a second node when it must"
    );
    pg.remove().await.unwrap();

    let pg = group(&driver, PlacementStrategy::Spread, 3, 0.5)
        .await
        .unwrap();
    assert_eq!(distinct(&pg), 3, "SPREAD uses every node when it can");
    pg.remove().await.unwrap();

    // Pinned bundles go where they are told.
    let nodes = node_ids(&driver).await;
    let ids: Vec<String> = nodes.iter().map(|(_, id, _)| id.clone()).collect();
    let mut pg = driver
        .placement_group(PlacementStrategy::Spread)
        .bundle([("CPU", 1.0)])
        .bundle([("CPU", 1.0)])
        .on_nodes([ids[2].clone(), ids[0].clone()])
        .create()
        .await
        .unwrap();
    pg.ready(READY).await.unwrap();
    assert_eq!(pg.bundle_nodes(), &[ids[2].clone(), ids[0].clone()]);
    pg.remove().await.unwrap();
}

#[tokio::test]
async fn groups_that_cannot_fit_are_refused() {
    let c = cluster3().await;
    let driver = c.b.connect().await;
    let err = |r: reef::Result<PlacementGroup>| r.err().expect("must be refused");
    // 4 bundles on 3 nodes, all different.
    let e = err(group(&driver, PlacementStrategy::StrictSpread, 4, 1.0).await);
    assert_eq!(e.code, ErrorCode::Infeasible, "{e}");
    // 3 CPUs on one node of 2.
    let e = err(group(&driver, PlacementStrategy::StrictPack, 3, 1.0).await);
    assert_eq!(e.code, ErrorCode::Infeasible, "{e}");
    // More than the whole cluster.
    let e = err(group(&driver, PlacementStrategy::Pack, 1, 7.0).await);
    assert_eq!(e.code, ErrorCode::Infeasible, "{e}");
    // A node that does not exist, named in the error.
    let e = driver
        .placement_group(PlacementStrategy::Pack)
        .bundle([("CPU", 1.0)])
        .on_nodes(["no-such-node"])
        .create()
        .await
        .err()
        .expect("an unknown node must be refused");
    assert_eq!(e.code, ErrorCode::UnknownNode, "{e}");
    assert!(e.message.contains("no-such-node"), "{e}");
    // Nothing was left reserved: the whole cluster still fits.
    let pg = group(&driver, PlacementStrategy::Spread, 3, 2.0)
        .await
        .unwrap();
    pg.remove().await.unwrap();
}

#[tokio::test]
async fn tasks_and_actors_run_in_their_bundles() {
    let c = cluster3().await;
    let driver = c.head.connect().await;
    let m = driver.register_file(guest("demo")).await.unwrap();
    let pg = group(&driver, PlacementStrategy::StrictSpread, 3, 1.0)
        .await
        .unwrap();
    for (i, node) in pg.bundle_nodes().iter().enumerate() {
        for _ in 0..3 {
            let r = driver
                .task(&m, "node_id")
                .strategy(pg.bundle(i as u32))
                .submit()
                .unwrap();
            assert_eq!(&driver.get::<String>(&r).await.unwrap(), node, "bundle {i}");
        }
    }
    // An actor in each bundle (one of them on the driver's own node).
    for (i, node) in pg.bundle_nodes().iter().enumerate() {
        let w = driver
            .actor(&m, "Where")
            .num_cpus(1.0)
            .strategy(pg.bundle(i as u32))
            .create()
            .await
            .unwrap();
        let r = w.call("node").submit().unwrap();
        assert_eq!(
            &driver.get::<String>(&r).await.unwrap(),
            node,
            "actor in bundle {i}"
        );
        w.kill().await.unwrap();
    }
    // Any bundle: one of the group's nodes.
    let r = driver
        .task(&m, "node_id")
        .strategy(pg.any_bundle())
        .submit()
        .unwrap();
    assert!(pg
        .bundle_nodes()
        .contains(&driver.get::<String>(&r).await.unwrap()));
    // More than a bundle holds.
    let r = driver
        .task(&m, "node_id")
        .num_cpus(2.0)
        .strategy(pg.bundle(0))
        .submit()
        .unwrap();
    let e = driver.get::<String>(&r).await.err().unwrap();
    assert_eq!(e.code, ErrorCode::Infeasible, "{e}");
    // A bundle the group does not have.
    let r = driver
        .task(&m, "node_id")
        .strategy(pg.bundle(7))
        .submit()
        .unwrap();
    let e = driver.get::<String>(&r).await.err().unwrap();
    assert_eq!(e.code, ErrorCode::BadArgument, "{e}");
    pg.remove().await.unwrap();
}

#[tokio::test]
async fn removing_a_group_ends_its_work_and_frees_its_resources() {
    let c = cluster3().await;
    let driver = c.head.connect().await;
    let m = driver.register_file(guest("demo")).await.unwrap();
    let pg = group(&driver, PlacementStrategy::StrictSpread, 3, 2.0)
        .await
        .unwrap();
    let small = driver.put_bytes(&[1u8; 16]).await.unwrap();
    // A long task in bundle 0 (the whole node's CPUs), an actor in bundle 1.
    let long = driver
        .task(&m, "hold_copy")
        .arg(&small)
        .arg(60_000u64)
        .num_cpus(2.0)
        .strategy(pg.bundle(0))
        .submit()
        .unwrap();
    let acc = driver
        .actor(&m, "Accumulator")
        .num_cpus(1.0)
        .strategy(pg.bundle(1))
        .create()
        .await
        .unwrap();
    let r = acc.call("add").arg(1.0).submit().unwrap();
    assert_eq!(driver.get::<f64>(&r).await.unwrap(), 1.0);
    // Nothing else fits anywhere while the group holds every CPU.
    let blocked = driver.task(&m, "node_id").submit().unwrap();
    assert!(driver
        .get_bytes_timeout(&blocked, Duration::from_millis(300))
        .await
        .is_err());
    pg.remove().await.unwrap();
    let e = tokio::time::timeout(Duration::from_secs(10), driver.get::<u64>(&long))
        .await
        .expect("the group's task kept running after removal")
        .err()
        .unwrap();
    assert_eq!(e.code, ErrorCode::PlacementGroupRemoved, "{e}");
    let r = acc.call("add").arg(1.0).submit().unwrap();
    let e = driver.get::<f64>(&r).await.err().unwrap();
    assert_eq!(e.code, ErrorCode::ActorDead, "{e}");
    assert!(e.message.contains("placement group"), "{e}");
    // The resources are back: the waiting task runs, and new work in the
    // removed group is refused.
    let node = tokio::time::timeout(Duration::from_secs(10), driver.get::<String>(&blocked))
        .await
        .expect("the freed resources were not given back")
        .unwrap();
    assert!(!node.is_empty());
    let r = driver
        .task(&m, "node_id")
        .strategy(pg.bundle(0))
        .submit()
        .unwrap();
    let e = driver.get::<String>(&r).await.err().unwrap();
    assert_eq!(e.code, ErrorCode::PlacementGroupRemoved, "{e}");
}
