//! Placement groups against three fake nodes (token-checked `Peer` servers
//! that keep their own bundle accounting).

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::*;
use reef_core::ReefError;
use reef_gcs::ServiceConfig;
use reef_proto::scheduling_strategy::Kind;
use reef_proto::*;
use tonic::Code;

fn config() -> ServiceConfig {
    ServiceConfig {
        node_timeout: Duration::from_secs(60),
        ..Default::default()
    }
}

fn group(strategy: PlacementStrategy, cpus: &[f64]) -> CreatePlacementGroupRequest {
    CreatePlacementGroupRequest {
        name: format!("{strategy:?}"),
        strategy: strategy as i32,
        bundles: cpus.iter().map(|c| rmap(*c).unwrap()).collect(),
        node_ids: Vec::new(),
        tenant: String::new(),
    }
}

fn distinct(nodes: &[String]) -> usize {
    nodes.iter().collect::<BTreeSet<_>>().len()
}

fn state(info: &PlacementGroupInfo) -> PlacementGroupState {
    PlacementGroupState::try_from(info.state).unwrap()
}

/// The fake nodes' own record agrees with `bundle_nodes`.
fn assert_reserved_as_reported(nodes: &[FakeNode], info: &PlacementGroupInfo) {
    for n in nodes {
        let expected: Vec<u32> = info
            .bundle_nodes
            .iter()
            .enumerate()
            .filter(|(_, id)| **id == n.id)
            .map(|(i, _)| i as u32)
            .collect();
        assert_eq!(n.bundles_of(info.id), expected, "node {}", n.id);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_four_strategies_place_and_remove_releases() {
    let head = start_head(config()).await;
    let nodes = fake_cluster(&head, 3, 4.0).await;
    let c = &head.client;

    // 4 CPUs per node; the comments say what is left (n0, n1, n2).
    let pack = c
        .pg_create(group(PlacementStrategy::Pack, &[0.5, 0.5]))
        .await
        .unwrap(); // 3 4 4
    assert_eq!(
        state(&pack),
        PlacementGroupState::PgCreated,
        "{}",
        pack.error
    );
    assert_eq!(distinct(&pack.bundle_nodes), 1);
    assert_reserved_as_reported(&nodes, &pack);

    let spread = c
        .pg_create(group(PlacementStrategy::Spread, &[1.0, 1.0, 1.0]))
        .await
        .unwrap(); // 2 3 3
    assert_eq!(state(&spread), PlacementGroupState::PgCreated);
    assert_eq!(distinct(&spread.bundle_nodes), 3);
    assert_reserved_as_reported(&nodes, &spread);

    let strict_pack = c
        .pg_create(group(PlacementStrategy::StrictPack, &[0.5, 0.5]))
        .await
        .unwrap(); // 2 2 3
    assert_eq!(state(&strict_pack), PlacementGroupState::PgCreated);
    assert_eq!(distinct(&strict_pack.bundle_nodes), 1);
    assert_reserved_as_reported(&nodes, &strict_pack);

    let strict_spread = c
        .pg_create(group(PlacementStrategy::StrictSpread, &[0.5, 0.5, 0.5]))
        .await
        .unwrap(); // 1.5 1.5 2.5
    assert_eq!(state(&strict_spread), PlacementGroupState::PgCreated);
    assert_eq!(distinct(&strict_spread.bundle_nodes), 3);
    assert_reserved_as_reported(&nodes, &strict_spread);

    // PACK over more than one node when one is not enough (best effort).
    let big_pack = c
        .pg_create(group(PlacementStrategy::Pack, &[1.5, 1.5]))
        .await
        .unwrap();
    assert_eq!(
        state(&big_pack),
        PlacementGroupState::PgCreated,
        "{}",
        big_pack.error
    );
    assert_eq!(distinct(&big_pack.bundle_nodes), 2);
    assert_reserved_as_reported(&nodes, &big_pack);

    // The view carries the groups.
    let view = head.service.view();
    assert_eq!(view.placement_groups.len(), 5);

    for info in [&pack, &spread, &strict_pack, &strict_spread, &big_pack] {
        c.pg_remove(info.id).await.unwrap();
        assert_eq!(
            state(&c.pg_get(info.id).await.unwrap()),
            PlacementGroupState::PgRemoved
        );
    }
    c.pg_remove(pack.id).await.unwrap(); // idempotent
    for n in &nodes {
        assert_eq!(n.reserved_groups(), 0, "node {} still holds bundles", n.id);
    }
    assert!(head.service.view().placement_groups.is_empty());
    let err = c.pg_get(987_654).await.unwrap_err();
    assert_eq!(
        ReefError::from_status(&err).code,
        ErrorCode::UnknownPlacementGroup
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_that_can_never_fit_are_rejected_at_once() {
    let head = start_head(config()).await;
    let nodes = fake_cluster(&head, 3, 4.0).await;
    let c = &head.client;
    let cases = [
        (PlacementStrategy::Pack, vec![8.0], "bundle 0"),
        (PlacementStrategy::Spread, vec![1.0, 5.0], "bundle 1"),
        (PlacementStrategy::StrictPack, vec![3.0, 3.0], "STRICT_PACK"),
        (
            PlacementStrategy::StrictSpread,
            vec![1.0; 4],
            "STRICT_SPREAD",
        ),
    ];
    for (strategy, cpus, says) in cases {
        let err = c.pg_create(group(strategy, &cpus)).await.unwrap_err();
        assert_eq!(err.code(), Code::FailedPrecondition, "{strategy:?}");
        assert!(
            err.message().starts_with("INFEASIBLE: "),
            "{}",
            err.message()
        );
        assert!(err.message().contains(says), "{}", err.message());
    }
    // An unknown explicit node.
    let mut req = group(PlacementStrategy::Spread, &[1.0, 1.0]);
    req.node_ids = vec!["n1".into(), "ghost".into()];
    let err = c.pg_create(req).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().starts_with("UNKNOWN_NODE: ghost"),
        "{}",
        err.message()
    );
    // Bad bundles.
    let err = c
        .pg_create(group(PlacementStrategy::Pack, &[-1.0]))
        .await
        .unwrap_err();
    assert_eq!(ReefError::from_status(&err).code, ErrorCode::BadArgument);
    let err = c
        .pg_create(group(PlacementStrategy::Pack, &[]))
        .await
        .unwrap_err();
    assert_eq!(ReefError::from_status(&err).code, ErrorCode::BadArgument);
    // Nothing was reserved anywhere.
    for n in &nodes {
        assert_eq!(n.reserve_calls.load(Ordering::Relaxed), 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explicit_nodes_are_honoured() {
    let head = start_head(config()).await;
    let nodes = fake_cluster(&head, 3, 4.0).await;
    let mut req = group(PlacementStrategy::StrictSpread, &[1.0, 1.0]);
    req.node_ids = vec!["n2".into(), "n0".into()];
    let info = head.client.pg_create(req).await.unwrap();
    assert_eq!(state(&info), PlacementGroupState::PgCreated);
    assert_eq!(info.bundle_nodes, ["n2", "n0"]);
    assert_reserved_as_reported(&nodes, &info);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_clusters_leave_groups_pending_until_resources_free() {
    let head = start_head(config()).await;
    let nodes = fake_cluster(&head, 3, 4.0).await;
    let c = &head.client;
    let mut full = Vec::new();
    for _ in 0..3 {
        let info = c
            .pg_create(group(PlacementStrategy::StrictPack, &[2.0, 2.0]))
            .await
            .unwrap();
        assert_eq!(state(&info), PlacementGroupState::PgCreated);
        full.push(info);
    }
    let waiting = c
        .pg_create(group(PlacementStrategy::StrictPack, &[4.0]))
        .await
        .unwrap();
    assert_eq!(state(&waiting), PlacementGroupState::PgPending);
    let still = c
        .pg_wait(waiting.id, Duration::from_millis(300))
        .await
        .unwrap();
    assert_eq!(
        state(&still),
        PlacementGroupState::PgPending,
        "times out pending"
    );

    let waiter = {
        let c = c.clone();
        let id = waiting.id;
        tokio::spawn(async move { c.pg_wait(id, Duration::from_secs(10)).await.unwrap() })
    };
    c.pg_remove(full[1].id).await.unwrap();
    let created = waiter.await.unwrap();
    assert_eq!(
        state(&created),
        PlacementGroupState::PgCreated,
        "{}",
        created.error
    );
    assert_eq!(created.bundle_nodes[0], full[1].bundle_nodes[0]);
    assert_reserved_as_reported(&nodes, &created);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusing_node_makes_the_group_retry_and_others_release() {
    let head = start_head(config()).await;
    let nodes = fake_cluster(&head, 3, 4.0).await;
    nodes[1].refuse.store(true, Ordering::Relaxed);
    let info = head
        .client
        .pg_create(group(PlacementStrategy::StrictSpread, &[1.0, 1.0, 1.0]))
        .await
        .unwrap();
    assert_eq!(state(&info), PlacementGroupState::PgPending);
    assert!(info.error.contains("refuses"), "{}", info.error);
    // The nodes that said yes gave their bundles back.
    eventually(Duration::from_secs(5), || {
        (nodes[0].reserved_groups() == 0 && nodes[2].reserved_groups() == 0).then_some(())
    })
    .await;
    assert!(nodes[0].release_calls.load(Ordering::Relaxed) >= 1);
    // Retried in the background until the node agrees.
    let calls = nodes[1].reserve_calls.load(Ordering::Relaxed);
    eventually(Duration::from_secs(5), || {
        (nodes[1].reserve_calls.load(Ordering::Relaxed) > calls + 1).then_some(())
    })
    .await;
    nodes[1].refuse.store(false, Ordering::Relaxed);
    let done = head
        .client
        .pg_wait(info.id, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(state(&done), PlacementGroupState::PgCreated);
    assert_reserved_as_reported(&nodes, &done);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actors_go_into_bundles_and_die_with_their_group() {
    let head = start_head(config()).await;
    let nodes = fake_cluster(&head, 3, 4.0).await;
    let c = &head.client;
    let info = c
        .pg_create(group(PlacementStrategy::StrictSpread, &[1.0, 2.0]))
        .await
        .unwrap();
    let place = |id, index, cpu| PlaceActorRequest {
        actor_id: id,
        resources: rmap(cpu),
        strategy: Some(SchedulingStrategy {
            kind: Some(Kind::PlacementGroup(BundleRef {
                placement_group_id: info.id,
                bundle_index: index,
            })),
        }),
        requester_node_id: "n0".into(),
        ..Default::default()
    };
    let loc = c.place_actor(place(1, 1, 2.0)).await.unwrap();
    assert_eq!(loc.node_id, info.bundle_nodes[1]);
    let loc = c.place_actor(place(2, -1, 2.0)).await.unwrap();
    assert_eq!(
        loc.node_id, info.bundle_nodes[1],
        "only bundle 1 fits 2 CPUs"
    );
    let err = c.place_actor(place(3, 0, 2.0)).await.unwrap_err();
    assert_eq!(ReefError::from_status(&err).code, ErrorCode::Infeasible);
    let err = c.place_actor(place(3, 5, 1.0)).await.unwrap_err();
    assert_eq!(ReefError::from_status(&err).code, ErrorCode::BadArgument);
    c.pg_remove(info.id).await.unwrap();
    assert_eq!(c.lookup_actor_id(1).await.unwrap().state, "DEAD");
    let err = c.place_actor(place(4, 0, 1.0)).await.unwrap_err();
    assert_eq!(
        ReefError::from_status(&err).code,
        ErrorCode::UnknownPlacementGroup
    );
    drop(nodes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_node_sends_its_groups_back_to_pending() {
    let head = start_head(config()).await;
    let nodes = fake_cluster(&head, 3, 4.0).await;
    let c = &head.client;
    let info = c
        .pg_create(group(PlacementStrategy::StrictPack, &[1.0, 1.0]))
        .await
        .unwrap();
    let victim = info.bundle_nodes[0].clone();
    assert!(head.service.mark_node_dead(&victim, "test kill"));
    let now = c.pg_get(info.id).await.unwrap();
    // Rescheduled onto a surviving node by the retry loop.
    let moved = eventually(Duration::from_secs(5), || {
        let v = head.service.view();
        let g = v.placement_groups.iter().find(|g| g.id == info.id)?.clone();
        (state(&g) == PlacementGroupState::PgCreated).then_some(g)
    })
    .await;
    assert!(state(&now) == PlacementGroupState::PgPending || now.bundle_nodes != info.bundle_nodes);
    assert_ne!(moved.bundle_nodes[0], victim);
    assert_reserved_as_reported(
        &nodes
            .iter()
            .filter(|n| n.id != victim)
            .cloned()
            .collect::<Vec<_>>(),
        &moved,
    );
    // A group pinned to a dead node is refused.
    let mut req = group(PlacementStrategy::Pack, &[1.0]);
    req.node_ids = vec![victim.clone()];
    let err = c.pg_create(req).await.unwrap_err();
    assert!(
        err.message()
            .starts_with(&format!("UNKNOWN_NODE: {victim}")),
        "{}",
        err.message()
    );
}

/// What a fake node holds, as it reports it to a restarted control plane.
fn rejoin(node: &FakeNode, index: u32) -> RegisterNodeRequest {
    let held = node.state.lock().unwrap().reserved.clone();
    let mut bundles: Vec<BundleReservation> = held
        .iter()
        .flat_map(|(group, b)| {
            b.iter().map(|(i, _)| BundleReservation {
                placement_group_id: *group,
                bundle_index: *i,
                resources: None,
            })
        })
        .collect();
    bundles.sort_by_key(|b| (b.placement_group_id, b.bundle_index));
    RegisterNodeRequest {
        node_index: index,
        bundles,
        ..node.register_request()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_control_plane_keeps_groups_its_nodes_still_hold() {
    use std::sync::Arc;

    use reef_gcs::{ControlPlaneService, FileStore};

    let dir = tempfile::tempdir().unwrap();
    let nodes = [
        FakeNode::start("n0", 4.0).await,
        FakeNode::start("n1", 4.0).await,
        FakeNode::start("n2", 4.0).await,
    ];
    let (spread, pinned) = {
        let store = Arc::new(FileStore::open(dir.path()).unwrap());
        let service = ControlPlaneService::new(store, TOKEN, config()).unwrap();
        let c = service.in_process();
        for n in &nodes {
            c.register(n.register_request()).await.unwrap();
        }
        let spread = c
            .pg_create(group(PlacementStrategy::Spread, &[1.0, 1.0, 1.0]))
            .await
            .unwrap();
        assert_eq!(state(&spread), PlacementGroupState::PgCreated);
        let mut req = group(PlacementStrategy::Pack, &[1.0]);
        req.node_ids = vec!["n0".into()];
        let pinned = c.pg_create(req).await.unwrap();
        assert_eq!(pinned.bundle_nodes, vec!["n0".to_string()]);
        (spread, pinned)
    };
    // n0 also holds bundles of a group the control plane never recorded.
    nodes[0]
        .state
        .lock()
        .unwrap()
        .reserved
        .insert(999_999, vec![(0, cpus(0.5))]);
    // n2 lost its bundles while the control plane was away.
    nodes[2].state.lock().unwrap().reserved.clear();

    let store = eventually(Duration::from_secs(5), || FileStore::open(dir.path()).ok()).await;
    let service = ControlPlaneService::new(Arc::new(store), TOKEN, config()).unwrap();
    let c = service.in_process();
    // Restored as they were until the nodes report.
    assert_eq!(
        state(&c.pg_get(spread.id).await.unwrap()),
        PlacementGroupState::PgCreated
    );
    for (i, n) in nodes.iter().enumerate() {
        let reply = c.register(rejoin(n, i as u32 + 1)).await.unwrap();
        assert_eq!(reply.node_index, i as u32 + 1);
    }
    // The pinned group is untouched; the stale bundles are released.
    let kept = c.pg_get(pinned.id).await.unwrap();
    assert_eq!(state(&kept), PlacementGroupState::PgCreated);
    assert_eq!(kept.bundle_nodes, pinned.bundle_nodes);
    assert_eq!(kept.node_ids, vec!["n0".to_string()]);
    eventually(Duration::from_secs(5), || {
        (!nodes[0]
            .state
            .lock()
            .unwrap()
            .reserved
            .contains_key(&999_999))
        .then_some(())
    })
    .await;
    // The spread group lost n2's bundle: rescheduled over the three nodes.
    let again = c.pg_wait(spread.id, Duration::from_secs(10)).await.unwrap();
    assert_eq!(state(&again), PlacementGroupState::PgCreated, "{again:?}");
    assert_eq!(distinct(&again.bundle_nodes), 3);
    assert_reserved_as_reported(&nodes, &again);
    assert_eq!(nodes[0].bundles_of(pinned.id), vec![0]);
}

/// What a head SIGKILLed now leaves: a copy of its store's file, taken
/// while the control plane runs (redb recovers it like after a crash).
fn crash_copy(dir: &std::path::Path) -> tempfile::TempDir {
    use reef_gcs::DB_FILE;

    let copy = tempfile::tempdir().unwrap();
    std::fs::copy(dir.join(DB_FILE), copy.path().join(DB_FILE)).unwrap();
    copy
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_a_reply_says_of_a_group_survives_a_crash_of_the_head() {
    use std::sync::Arc;

    use reef_gcs::{ControlPlaneService, FileStore};

    // No background flush during the test: only what replies wait for is
    // stored.
    let config = ServiceConfig {
        flush_interval: Duration::from_secs(3600),
        ..config()
    };
    let dir = tempfile::tempdir().unwrap();
    let node = FakeNode::start("n0", 4.0).await;
    let store = Arc::new(FileStore::open(dir.path()).unwrap());
    let service = ControlPlaneService::new(store, TOKEN, config.clone()).unwrap();
    let c = service.in_process();
    c.register(node.register_request()).await.unwrap();
    // The node's record is stored (groups on nodes the store does not
    // know go back to pending when the control plane restarts).
    service.flush();
    let big = c
        .pg_create(group(PlacementStrategy::Pack, &[3.0]))
        .await
        .unwrap();
    assert_eq!(state(&big), PlacementGroupState::PgCreated);
    // Fits the node, not next to `big`: pending until `big` is removed,
    // then created by the retry loop.
    let later = c
        .pg_create(group(PlacementStrategy::Pack, &[2.0]))
        .await
        .unwrap();
    assert_eq!(state(&later), PlacementGroupState::PgPending);
    let crashed = crash_copy(dir.path());
    c.pg_remove(big.id).await.unwrap();
    let created = c.pg_wait(later.id, Duration::from_secs(10)).await.unwrap();
    assert_eq!(state(&created), PlacementGroupState::PgCreated);
    let crashed_later = crash_copy(dir.path());

    let restarted = |dir: &std::path::Path| {
        let store = Arc::new(FileStore::open(dir).unwrap());
        ControlPlaneService::new(store, TOKEN, config.clone()).unwrap()
    };
    let first = restarted(crashed.path());
    let c = first.in_process();
    let kept = c.pg_get(big.id).await.unwrap();
    assert_eq!(state(&kept), PlacementGroupState::PgCreated, "{kept:?}");
    assert_eq!(kept.bundle_nodes, vec!["n0".to_string()]);
    // Still pending, or created meanwhile by this control plane's retries.
    c.pg_get(later.id).await.unwrap();

    let second = restarted(crashed_later.path());
    let c = second.in_process();
    let gone = c.pg_get(big.id).await.unwrap_err();
    assert_eq!(gone.code(), Code::NotFound, "{gone:?}");
    let kept = c.pg_get(later.id).await.unwrap();
    assert_eq!(state(&kept), PlacementGroupState::PgCreated, "{kept:?}");
    assert_eq!(kept.bundle_nodes, vec!["n0".to_string()]);
}
