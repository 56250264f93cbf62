//! Throughput of the control plane on loopback (its benchmark rows):
//! placement groups created and removed per second, and actor placements
//! per second, against three fake nodes. Prints the figures; asserts only
//! correctness. `cargo test --release -p reef-gcs --test rates -- --nocapture`

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use reef_gcs::ServiceConfig;
use reef_proto::*;

const CONCURRENCY: usize = 32;

fn config() -> ServiceConfig {
    ServiceConfig {
        node_timeout: Duration::from_secs(600),
        ..Default::default()
    }
}

/// Runs `total` operations over `CONCURRENCY` client tasks; returns ops/s.
async fn rate<F, Fut>(total: usize, op: F) -> f64
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let op = Arc::new(op);
    let start = Instant::now();
    let tasks: Vec<_> = (0..CONCURRENCY)
        .map(|t| {
            let op = op.clone();
            tokio::spawn(async move {
                let mut i = t;
                while i < total {
                    op(i).await;
                    i += CONCURRENCY;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    total as f64 / start.elapsed().as_secs_f64()
}

const ALL_STRATEGIES: [PlacementStrategy; 4] = [
    PlacementStrategy::Pack,
    PlacementStrategy::Spread,
    PlacementStrategy::StrictPack,
    PlacementStrategy::StrictSpread,
];

/// Creates and removes `groups` groups of three 1-CPU bundles, cycling
/// through `strategies`; returns groups/s.
async fn group_rate(head: &Head, groups: usize, strategies: &[PlacementStrategy]) -> f64 {
    let client = head.client.clone();
    let strategies = strategies.to_vec();
    rate(groups, move |i| {
        let client = client.clone();
        let strategy = strategies[i % strategies.len()];
        async move {
            let req = CreatePlacementGroupRequest {
                name: String::new(),
                strategy: strategy as i32,
                bundles: vec![rmap(1.0).unwrap(); 3],
                node_ids: Vec::new(),
                tenant: String::new(),
            };
            let info = client.pg_create(req).await.unwrap();
            assert_eq!(
                info.state,
                PlacementGroupState::PgCreated as i32,
                "{}",
                info.error
            );
            client.pg_remove(info.id).await.unwrap();
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn placement_groups_and_actors_per_second() {
    let head = start_head(config()).await;
    let nodes = fake_cluster(&head, 3, 1e9).await;

    let groups = 4_000;
    let mixed_rate = group_rate(&head, groups, &ALL_STRATEGIES).await;
    let pack_rate = group_rate(&head, groups, &[PlacementStrategy::Pack]).await;
    for n in &nodes {
        assert_eq!(n.reserved_groups(), 0);
    }

    let client = head.client.clone();
    let actors = 20_000;
    let actor_rate = rate(actors, move |i| {
        let client = client.clone();
        async move {
            let req = PlaceActorRequest {
                actor_id: i as u64 + 1,
                module: "m".into(),
                class: "A".into(),
                name: if i % 2 == 0 {
                    format!("actor-{i}")
                } else {
                    String::new()
                },
                resources: rmap(1.0),
                strategy: None,
                requester_node_id: format!("n{}", i % 3),
                job_id: 1,
                lifecycle: None,
                restart: false,
                tenant: None,
            };
            let loc = client.place_actor(req).await.unwrap();
            assert_eq!(loc.state, "PENDING");
        }
    })
    .await;
    head.service.flush();

    println!(
        "control plane on loopback, {CONCURRENCY} concurrent callers, 3 fake nodes, file store:"
    );
    println!(
        "  placement groups created+removed: {mixed_rate:>8.0} /s  (target >= 2,000; 3 bundles each, \
         the four strategies in turn, {groups} groups)"
    );
    println!(
        "  placement groups created+removed: {pack_rate:>8.0} /s  (PACK only: one node, one \
         ReserveBundles + one ReleaseBundles per group)"
    );
    println!(
        "  actor placements:                 {actor_rate:>8.0} /s  (target >= 2,000; {actors} actors)"
    );
}
