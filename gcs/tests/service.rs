//! The control plane over gRPC: tokens, membership, views, failure
//! detection, bad resources, modules, actors, jobs and KV.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use futures::StreamExt;
use reef_core::ReefError;
use reef_gcs::{GcsClient, ServiceConfig};
use reef_proto::scheduling_strategy::Kind;
use reef_proto::*;
use sha2::{Digest, Sha256};
use tonic::Code;

fn node(id: &str, cpu: f64) -> RegisterNodeRequest {
    RegisterNodeRequest {
        node_id: id.into(),
        // One address per node: a node registering at a live node's
        // address replaces it.
        address: format!(
            "127.0.0.1:{}",
            7000 + id.bytes().map(u16::from).sum::<u16>()
        ),
        total: rmap(cpu),
        available: rmap(cpu),
        ..Default::default()
    }
}

fn actor(id: u64, name: &str, cpu: f64, requester: &str) -> PlaceActorRequest {
    PlaceActorRequest {
        actor_id: id,
        module: "ab".into(),
        class: "Counter".into(),
        name: name.into(),
        resources: rmap(cpu),
        strategy: None,
        requester_node_id: requester.into(),
        job_id: 1,
        lifecycle: None,
        restart: false,
        tenant: Some("team-a".into()),
    }
}

fn strategy(kind: Kind) -> Option<SchedulingStrategy> {
    Some(SchedulingStrategy { kind: Some(kind) })
}

fn code_of(status: &tonic::Status) -> ErrorCode {
    ReefError::from_status(status).code
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_without_the_token_are_rejected() {
    let head = start_head(ServiceConfig::default()).await;
    let wrong = GcsClient::connect_lazy(&head.address, "not-the-token").unwrap();
    let err = wrong.register(node("n1", 1.0)).await.unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    assert_eq!(code_of(&err), ErrorCode::Unauthenticated);
    // No token at all (a plain client).
    let mut plain = reef_proto::control_plane_client::ControlPlaneClient::connect(format!(
        "http://{}",
        head.address
    ))
    .await
    .unwrap();
    let err = plain
        .heartbeat(HeartbeatRequest::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    // The right one works.
    assert_eq!(
        head.client
            .register(node("n1", 1.0))
            .await
            .unwrap()
            .node_index,
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_register_heartbeat_and_subscribers_see_views() {
    let head = start_head(ServiceConfig::default()).await;
    let first = head.client.register(node("head", 4.0)).await.unwrap();
    assert_eq!(first.node_index, 1);
    assert_eq!(first.heartbeat_interval_ms, 1000);
    assert_eq!(first.node_timeout_ms, 10_000);
    let second = head.client.register(node("n2", 8.0)).await.unwrap();
    assert_eq!(second.node_index, 2);
    let view = second.view.unwrap();
    assert_eq!(view.nodes.len(), 2);
    assert!(view.nodes[0].head && !view.nodes[1].head);

    let mut views = head.client.subscribe("head").await.unwrap();
    let first_view = views.next().await.unwrap().unwrap();
    assert_eq!(first_view.nodes.len(), 2, "the full view comes first");

    let mut hb = HeartbeatRequest {
        node_id: "n2".into(),
        available: rmap(3.0),
        pending_tasks: 5,
        running_tasks: 2,
        store_used: 10,
        store_capacity: 100,
    };
    assert!(!head.client.heartbeat(hb.clone()).await.unwrap());
    let mut last_version = first_view.version;
    let seen = loop {
        let v = tokio::time::timeout(Duration::from_secs(5), views.next())
            .await
            .expect("a view within 5 s")
            .unwrap()
            .unwrap();
        assert!(v.version > last_version, "versions increase");
        last_version = v.version;
        let n2 = v.nodes.iter().find(|n| n.node_id == "n2").unwrap().clone();
        if n2.pending_tasks == 5 {
            break n2;
        }
    };
    assert_eq!(seen.available.unwrap().amounts["CPU"], 3.0);
    assert_eq!(
        (seen.running_tasks, seen.store_used, seen.store_capacity),
        (2, 10, 100)
    );

    // Bursts coalesce: 200 heartbeats, far fewer views.
    let start = Instant::now();
    for i in 0..200 {
        hb.pending_tasks = i;
        head.client.heartbeat(hb.clone()).await.unwrap();
    }
    let elapsed = start.elapsed();
    let mut count = 0;
    while let Ok(Some(Ok(v))) = tokio::time::timeout(Duration::from_millis(300), views.next()).await
    {
        count += 1;
        if v.nodes[1].pending_tasks == 199 {
            break;
        }
    }
    let bound = (elapsed.as_millis() / 50 + 3) as usize;
    assert!(
        count <= bound,
        "{count} views for {elapsed:?} of heartbeats"
    );

    // Unknown nodes are told so.
    hb.node_id = "stranger".into();
    assert!(head.client.heartbeat(hb).await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_node_is_declared_dead_within_the_timeout() {
    let timeout = Duration::from_millis(800);
    let head = start_head(ServiceConfig {
        node_timeout: timeout,
        ..Default::default()
    })
    .await;
    head.client.register(node("alive", 2.0)).await.unwrap();
    head.client.register(node("silent", 2.0)).await.unwrap();
    let loc = head
        .client
        .place_actor(PlaceActorRequest {
            strategy: strategy(Kind::NodeAffinity(NodeAffinity {
                node_id: "silent".into(),
                soft: false,
            })),
            ..actor(77, "doomed", 1.0, "alive")
        })
        .await
        .unwrap();
    assert_eq!(loc.node_id, "silent");

    let client = head.client.clone();
    let beating = tokio::spawn(async move {
        loop {
            let hb = HeartbeatRequest {
                node_id: "alive".into(),
                ..Default::default()
            };
            client.heartbeat(hb).await.unwrap();
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let mut views = head.client.subscribe("alive").await.unwrap();
    let start = Instant::now();
    let dead = loop {
        let v = tokio::time::timeout(Duration::from_secs(5), views.next())
            .await
            .expect("a view within 5 s")
            .unwrap()
            .unwrap();
        let states = node_states(&v);
        if states["silent"] == NodeState::Dead {
            assert_eq!(states["alive"], NodeState::Alive);
            break v.nodes.into_iter().find(|n| n.node_id == "silent").unwrap();
        }
    };
    let took = start.elapsed();
    // Registered just before `start`: dead after the timeout plus one sweep.
    assert!(took < timeout + Duration::from_secs(1), "took {took:?}");
    assert!(
        dead.death_reason.contains("no heartbeat"),
        "{}",
        dead.death_reason
    );

    // Its heartbeat now says unknown; its actor is dead and the name is free.
    let hb = HeartbeatRequest {
        node_id: "silent".into(),
        ..Default::default()
    };
    assert!(head.client.heartbeat(hb).await.unwrap());
    let loc = head.client.lookup_actor_id(77).await.unwrap();
    assert_eq!(loc.state, "DEAD");
    assert!(loc.death_reason.contains("silent"), "{}", loc.death_reason);
    let err = head.client.lookup_actor_name("doomed").await.unwrap_err();
    assert_eq!(code_of(&err), ErrorCode::UnknownActor);
    let again = head
        .client
        .place_actor(actor(78, "doomed", 1.0, "alive"))
        .await
        .unwrap();
    assert_eq!(again.node_id, "alive");
    beating.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_node_whose_port_refuses_connections_is_dead_before_the_timeout() {
    let timeout = Duration::from_secs(30);
    let head = start_head(ServiceConfig {
        heartbeat_interval: Duration::from_millis(100),
        node_timeout: timeout,
        probe_silent_nodes: true,
        ..Default::default()
    })
    .await;
    // "gone": a port nothing listens on any more. "busy": a listener that
    // never accepts (the kernel still completes connections), like a node
    // too loaded or stopped to heartbeat.
    let gone_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    for (id, port) in [
        ("gone", gone_port),
        ("busy", busy.local_addr().unwrap().port()),
    ] {
        let mut req = node(id, 1.0);
        req.address = format!("127.0.0.1:{port}");
        head.client.register(req).await.unwrap();
    }
    let mut views = head.client.subscribe("busy").await.unwrap();
    let start = Instant::now();
    let dead = loop {
        let v = tokio::time::timeout(Duration::from_secs(5), views.next())
            .await
            .expect("a view within 5 s")
            .unwrap()
            .unwrap();
        let states = node_states(&v);
        if states["gone"] == NodeState::Dead {
            assert_eq!(states["busy"], NodeState::Alive, "a busy node is not dead");
            break v.nodes.into_iter().find(|n| n.node_id == "gone").unwrap();
        }
    };
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    assert!(
        dead.death_reason.contains("refuses connections"),
        "{}",
        dead.death_reason
    );
    // The busy node outlives many probes (it dies at the 30 s timeout only).
    tokio::time::sleep(Duration::from_secs(1)).await;
    let view = head
        .client
        .subscribe("busy")
        .await
        .unwrap()
        .next()
        .await
        .unwrap()
        .unwrap();
    assert_eq!(node_states(&view)["busy"], NodeState::Alive);
    drop(busy);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_lying_about_resources_are_refused() {
    let head = start_head(ServiceConfig::default()).await;
    let mut bad = node("liar", 4.0);
    bad.total
        .as_mut()
        .unwrap()
        .amounts
        .insert("GPU".into(), -1.0);
    let err = head.client.register(bad).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().starts_with("BAD_ARGUMENT: "),
        "{}",
        err.message()
    );
    assert!(err.message().contains("`GPU`"), "{}", err.message());

    let mut nan = node("liar", 4.0);
    nan.available
        .as_mut()
        .unwrap()
        .amounts
        .insert("CPU".into(), f64::NAN);
    let err = head.client.register(nan).await.unwrap_err();
    assert!(err.message().contains("`CPU`"), "{}", err.message());

    let err = head.client.register(node("", 1.0)).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let mut no_address = node("x", 1.0);
    no_address.address.clear();
    assert!(head.client.register(no_address).await.is_err());

    // Registered honestly, then lies in heartbeats: refused, values kept.
    head.client.register(node("liar", 4.0)).await.unwrap();
    let honest = HeartbeatRequest {
        node_id: "liar".into(),
        available: rmap(2.5),
        ..Default::default()
    };
    head.client.heartbeat(honest).await.unwrap();
    for lie in [-1.0, f64::NAN, f64::INFINITY, 99.0] {
        let hb = HeartbeatRequest {
            node_id: "liar".into(),
            available: rmap(lie),
            ..Default::default()
        };
        let err = head.client.heartbeat(hb).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{lie}");
        assert_eq!(code_of(&err), ErrorCode::BadArgument);
        assert!(err.message().contains("CPU"), "{}", err.message());
    }
    let view = head.service.view();
    assert_eq!(
        view.nodes[0].available.as_ref().unwrap().amounts["CPU"],
        2.5
    );
    assert_eq!(view.nodes[0].state, NodeState::Alive as i32);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn modules_are_stored_by_hash() {
    let head = start_head(ServiceConfig::default()).await;
    let wasm = Bytes::from_static(b"\0asm\x01\0\0\0 pretend module");
    let hash = hex::encode(Sha256::digest(&wasm));
    head.client.put_module(&hash, wasm.clone()).await.unwrap();
    head.client.put_module(&hash, wasm.clone()).await.unwrap(); // idempotent
    assert_eq!(head.client.get_module(&hash).await.unwrap(), wasm);
    assert_eq!(
        head.client.get_module(&hash.to_uppercase()).await.unwrap(),
        wasm
    );

    let other = hex::encode(Sha256::digest(b"other"));
    let err = head
        .client
        .put_module(&other, wasm.clone())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().starts_with("BAD_ARGUMENT: "),
        "{}",
        err.message()
    );
    let err = head.client.put_module("xyz", wasm).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);

    let err = head.client.get_module(&other).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert_eq!(code_of(&err), ErrorCode::UnknownModule);
    assert!(err.message().contains(&other), "{}", err.message());

    // Big modules pass the default 4 MiB message limit.
    let big = Bytes::from(vec![7u8; 6 << 20]);
    let big_hash = hex::encode(Sha256::digest(&big));
    head.client
        .put_module(&big_hash, big.clone())
        .await
        .unwrap();
    assert_eq!(
        head.client.get_module(&big_hash).await.unwrap().len(),
        big.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actors_are_placed_named_and_looked_up() {
    let head = start_head(ServiceConfig::default()).await;
    for (id, cpu) in [("a", 2.0), ("b", 4.0), ("c", 1.0)] {
        head.client.register(node(id, cpu)).await.unwrap();
    }
    let c = &head.client;
    // Default: the requester while it fits (2 CPUs on a), then the roomiest.
    assert_eq!(
        c.place_actor(actor(1, "", 1.0, "a")).await.unwrap().node_id,
        "a"
    );
    assert_eq!(
        c.place_actor(actor(2, "", 1.0, "a")).await.unwrap().node_id,
        "a"
    );
    let third = c.place_actor(actor(3, "", 1.0, "a")).await.unwrap();
    assert_eq!(third.node_id, "b");
    assert_eq!(third.state, "PENDING");
    assert_eq!(third.address, "127.0.0.1:7098"); // b
                                                 // Fits b's total but nothing is free anywhere: queued on b.
    assert_eq!(
        c.place_actor(actor(4, "", 3.5, "c")).await.unwrap().node_id,
        "b"
    );
    // A retried placement gets the same answer.
    assert_eq!(
        c.place_actor(actor(4, "", 3.5, "c")).await.unwrap().node_id,
        "b"
    );

    // Infeasible everywhere.
    let err = c.place_actor(actor(5, "", 64.0, "a")).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(
        err.message().starts_with("INFEASIBLE: "),
        "{}",
        err.message()
    );
    let err = c.place_actor(actor(0, "", 1.0, "a")).await.unwrap_err();
    assert_eq!(code_of(&err), ErrorCode::BadArgument);
    let err = c.place_actor(actor(6, "", -1.0, "a")).await.unwrap_err();
    assert_eq!(code_of(&err), ErrorCode::BadArgument);

    // Names.
    c.place_actor(actor(10, "counter", 0.0, "a")).await.unwrap();
    let err = c
        .place_actor(actor(11, "counter", 0.0, "a"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists);
    assert!(
        err.message().starts_with("NAME_TAKEN: "),
        "{}",
        err.message()
    );
    assert_eq!(c.lookup_actor_name("counter").await.unwrap().actor_id, 10);
    c.set_actor_state(10, "ALIVE", "").await.unwrap();
    assert_eq!(c.lookup_actor_id(10).await.unwrap().state, "ALIVE");
    c.set_actor_state(10, "DEAD", "it crashed").await.unwrap();
    let dead = c.lookup_actor_id(10).await.unwrap();
    assert_eq!(
        (dead.state.as_str(), dead.death_reason.as_str()),
        ("DEAD", "it crashed")
    );
    let err = c.lookup_actor_name("counter").await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert!(
        err.message().starts_with("UNKNOWN_ACTOR: "),
        "{}",
        err.message()
    );
    assert_eq!(
        c.place_actor(actor(11, "counter", 0.0, "a"))
            .await
            .unwrap()
            .actor_id,
        11
    );
    let err = c.set_actor_state(10, "ALIVE", "").await.unwrap_err();
    assert_eq!(code_of(&err), ErrorCode::ActorDead);
    let err = c.set_actor_state(999, "ALIVE", "").await.unwrap_err();
    assert_eq!(code_of(&err), ErrorCode::UnknownActor);
    assert_eq!(
        code_of(&c.lookup_actor_id(999).await.unwrap_err()),
        ErrorCode::UnknownActor
    );

    // Spread: round robin over the nodes that fit.
    let mut spread = Vec::new();
    for id in 20..26 {
        let req = PlaceActorRequest {
            strategy: strategy(Kind::Spread(Empty {})),
            ..actor(id, "", 0.0, "a")
        };
        spread.push(c.place_actor(req).await.unwrap().node_id);
    }
    assert_eq!(spread, ["a", "b", "c", "a", "b", "c"]);

    // Node affinity.
    let affinity = |id, node: &str, soft, cpu| PlaceActorRequest {
        strategy: strategy(Kind::NodeAffinity(NodeAffinity {
            node_id: node.into(),
            soft,
        })),
        ..actor(id, "", cpu, "a")
    };
    assert_eq!(
        c.place_actor(affinity(30, "c", false, 1.0))
            .await
            .unwrap()
            .node_id,
        "c"
    );
    let err = c
        .place_actor(affinity(31, "ghost", false, 1.0))
        .await
        .unwrap_err();
    assert_eq!(code_of(&err), ErrorCode::UnknownNode);
    assert!(err.message().contains("ghost"));
    let err = c
        .place_actor(affinity(32, "c", false, 2.0))
        .await
        .unwrap_err();
    assert_eq!(code_of(&err), ErrorCode::Infeasible);
    // Soft: falls back when the node cannot take it.
    assert_ne!(
        c.place_actor(affinity(33, "c", true, 2.0))
            .await
            .unwrap()
            .node_id,
        "c"
    );
    assert_ne!(
        c.place_actor(affinity(34, "ghost", true, 1.0))
            .await
            .unwrap()
            .node_id,
        "ghost"
    );
    head.client.drain("c", "maintenance").await.unwrap();
    let err = c
        .place_actor(affinity(35, "c", false, 1.0))
        .await
        .unwrap_err();
    assert_eq!(code_of(&err), ErrorCode::NodeDied);
    let err = c.drain("ghost", "x").await.unwrap_err();
    assert_eq!(code_of(&err), ErrorCode::UnknownNode);
}

fn job(driver: &str, node_id: &str, started_at_ms: u64) -> StartJobRequest {
    StartJobRequest {
        driver_address: driver.into(),
        description: "test".into(),
        node_id: node_id.into(),
        started_at_ms,
        submission_id: String::new(),
        tenant: String::new(),
    }
}

/// Jobs and KV through `c`, its keys in namespace `ns`.
async fn jobs_and_kv_through(c: &dyn ControlPlane, ns: &str) {
    let before = c.list_jobs().await.unwrap().len();
    let first = c.start_job(job("127.0.0.1:1", "n1", 1_000)).await.unwrap();
    let second = c.start_job(job("10.0.0.2:5", "n2", 0)).await.unwrap();
    assert_eq!(second, first + 1);
    c.end_job(first, 2_000).await.unwrap();
    c.end_job(first, 3_000).await.unwrap(); // idempotent: the first end stays
    assert_eq!(
        code_of(&c.end_job(12345, 0).await.unwrap_err()),
        ErrorCode::BadArgument
    );
    let jobs = c.list_jobs().await.unwrap();
    assert_eq!(jobs.len(), before + 2);
    let ended = jobs.iter().find(|j| j.job_id == first).unwrap();
    assert_eq!(
        (ended.driver_address.as_str(), ended.node_id.as_str()),
        ("127.0.0.1:1", "n1")
    );
    assert_eq!((ended.started_at_ms, ended.ended_at_ms), (1_000, 2_000));
    let running = jobs.iter().find(|j| j.job_id == second).unwrap();
    assert_eq!(running.ended_at_ms, 0);
    // No start time given: the control plane's clock.
    assert!(running.started_at_ms >= reef_gcs::now_millis() - 60_000);

    assert!(c
        .kv_put(ns, "k", Bytes::from_static(b"v1"), false)
        .await
        .unwrap());
    assert!(!c
        .kv_put(ns, "k", Bytes::from_static(b"v2"), false)
        .await
        .unwrap());
    assert_eq!(
        c.kv_get(ns, "k").await.unwrap().unwrap(),
        Bytes::from_static(b"v1")
    );
    assert!(c
        .kv_put(ns, "k", Bytes::from_static(b"v3"), true)
        .await
        .unwrap());
    assert_eq!(
        c.kv_get(ns, "k").await.unwrap().unwrap(),
        Bytes::from_static(b"v3")
    );
    c.kv_put(ns, "k2", Bytes::new(), true).await.unwrap();
    assert_eq!(c.kv_keys(ns, "k").await.unwrap(), ["k", "k2"]);
    assert!(c.kv_delete(ns, "k").await.unwrap());
    assert!(c.kv_get(ns, "k").await.unwrap().is_none());
    assert!(c.kv_get("other", "k2").await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_and_kv_over_grpc_and_in_process() {
    let head = start_head(ServiceConfig::default()).await;
    jobs_and_kv_through(&head.client, "grpc").await;
    let in_process = head.service.in_process();
    jobs_and_kv_through(&in_process, "local").await;
    // One store behind both.
    assert_eq!(head.client.list_jobs().await.unwrap().len(), 4);
    assert_eq!(
        in_process.kv_keys("grpc", "").await.unwrap(),
        head.client.kv_keys("grpc", "").await.unwrap()
    );
}

/// Finished jobs (one per driver session) are bounded: past
/// `retained_finished_jobs` the tenant with the most loses its oldest, so a
/// tenant connecting in a loop neither grows the store without bound nor
/// pushes another tenant's jobs out; running jobs are never dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finished_jobs_are_bounded_per_tenant() {
    let head = start_head(ServiceConfig {
        retained_finished_jobs: 4,
        ..ServiceConfig::default()
    })
    .await;
    let c = &head.client;
    let of = |tenant: &str| StartJobRequest {
        tenant: tenant.into(),
        ..job("127.0.0.1:1", "n1", 0)
    };
    let a_done = c.start_job(of("a")).await.unwrap();
    c.end_job(a_done, 0).await.unwrap();
    let a_running = c.start_job(of("a")).await.unwrap();
    let mut b = Vec::new();
    for _ in 0..10 {
        let id = c.start_job(of("b")).await.unwrap();
        c.end_job(id, 0).await.unwrap();
        b.push(id);
    }
    let kept: Vec<u64> = c
        .list_jobs()
        .await
        .unwrap()
        .iter()
        .map(|j| j.job_id)
        .collect();
    let mut expected = vec![a_done, a_running];
    expected.extend(&b[7..]);
    assert_eq!(kept, expected);
}

/// Dead actors kept for lookups are bounded the same way: another tenant's
/// churn of actors past `retained_dead_actors` forgets its own first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_actors_are_retained_per_tenant() {
    let head = start_head(ServiceConfig {
        retained_dead_actors: 3,
        ..ServiceConfig::default()
    })
    .await;
    let c = &head.client;
    c.register(node("a", 4.0)).await.unwrap();
    let of = |id, tenant: &str| PlaceActorRequest {
        tenant: Some(tenant.into()),
        ..actor(id, "", 0.0, "a")
    };
    c.place_actor(of(1, "team-a")).await.unwrap();
    c.set_actor_state(1, "DEAD", "done").await.unwrap();
    for id in 10..20 {
        c.place_actor(of(id, "team-b")).await.unwrap();
        c.set_actor_state(id, "DEAD", "churn").await.unwrap();
    }
    let a = c.lookup_actor_id(1).await.unwrap();
    assert_eq!(
        (a.state.as_str(), a.death_reason.as_str()),
        ("DEAD", "done")
    );
    assert!(
        c.lookup_actor_id(10).await.is_err(),
        "B's oldest goes first"
    );
    assert_eq!(c.lookup_actor_id(19).await.unwrap().state, "DEAD");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_control_plane_keeps_what_reconnecting_nodes_hold() {
    use std::sync::Arc;

    use reef_gcs::{ActorState, ActorTable, ControlPlaneService, FileStore, NodeTable, Storage};

    let config = ServiceConfig {
        node_timeout: Duration::from_millis(1500),
        ..Default::default()
    };
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Arc::new(FileStore::open(dir.path()).unwrap());
        let service = ControlPlaneService::new(store, TOKEN, config.clone()).unwrap();
        let c = service.in_process();
        assert_eq!(c.register(node("n1", 2.0)).await.unwrap().node_index, 1);
        assert_eq!(c.register(node("n22", 2.0)).await.unwrap().node_index, 2);
        c.place_actor(actor(5, "kept", 1.0, "n1")).await.unwrap();
        c.set_actor_state(5, "ALIVE", "").await.unwrap();
        c.place_actor(actor(6, "vanished", 0.5, "n1"))
            .await
            .unwrap();
        c.set_actor_state(6, "ALIVE", "").await.unwrap();
        c.place_actor(actor(7, "elsewhere", 1.0, "n22"))
            .await
            .unwrap();
        c.kv_put("ns", "k", Bytes::from_static(b"v"), true)
            .await
            .unwrap();
        // Dropping the service flushes what is queued and closes the store.
    }
    let store: Arc<dyn Storage> =
        Arc::new(eventually(Duration::from_secs(5), || FileStore::open(dir.path()).ok()).await);
    let service = ControlPlaneService::new(store.clone(), TOKEN, config).unwrap();
    let c = service.in_process();
    assert_eq!(
        c.kv_get("ns", "k").await.unwrap().as_deref(),
        Some(&b"v"[..])
    );
    // Restored, but a node must register again before its heartbeats count.
    let kept = c.lookup_actor_name("kept").await.unwrap();
    assert_eq!(kept.node_id, "n1");
    // Whose actor it is survives too (nodes answer other tenants by it).
    assert_eq!(kept.tenant.as_deref(), Some("team-a"));
    let hb = HeartbeatRequest {
        node_id: "n1".into(),
        ..Default::default()
    };
    assert!(c.heartbeat(hb.clone()).await.unwrap());
    // A node asking for an index it does not have is refused.
    let wrong = RegisterNodeRequest {
        node_index: 2,
        ..node("n1", 2.0)
    };
    assert_eq!(
        code_of(&c.register(wrong).await.unwrap_err()),
        ErrorCode::NodeDied
    );
    // n1 comes back holding actor 5 only; n22 never does.
    let back = RegisterNodeRequest {
        node_index: 1,
        actors: vec![5],
        ..node("n1", 2.0)
    };
    assert_eq!(c.register(back).await.unwrap().node_index, 1);
    assert!(!c.heartbeat(hb.clone()).await.unwrap());
    assert_eq!(c.lookup_actor_name("kept").await.unwrap().state, "ALIVE");
    let gone = c.lookup_actor_id(6).await.unwrap();
    assert_eq!(gone.state, "DEAD");
    assert!(gone.death_reason.contains("reconnected"), "{gone:?}");
    // n22 is declared dead once the node timeout passes, with its actor.
    let deadline = Instant::now() + Duration::from_secs(10);
    let dead = loop {
        assert!(!c.heartbeat(hb.clone()).await.unwrap(), "n1 stays known");
        let view = service.view();
        let n22 = view.nodes.iter().find(|n| n.node_id == "n22").unwrap();
        if n22.state == NodeState::Dead as i32 {
            break n22.clone();
        }
        assert!(Instant::now() < deadline, "n22 was not declared dead");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(dead.death_reason.contains("reconnect"), "{dead:?}");
    assert_eq!(c.lookup_actor_id(7).await.unwrap().state, "DEAD");
    service.flush();
    let actors = ActorTable::new(store.clone());
    assert_eq!(actors.require(&5).unwrap().state, ActorState::Alive);
    assert!(matches!(
        actors.require(&7).unwrap().state,
        ActorState::Dead { .. }
    ));
    assert!(NodeTable::new(store.clone())
        .require("n1")
        .unwrap()
        .is_alive());
    // A new node still gets a fresh index.
    assert_eq!(c.register(node("n333", 2.0)).await.unwrap().node_index, 3);
}
