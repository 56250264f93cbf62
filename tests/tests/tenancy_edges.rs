//! Authorization at the edges sessions do not cover, against a head and a
//! worker (real `host` processes) with two tenants:
//!
//! * raw pull connections (how remote drivers read large objects): tenant
//!   B's token reads none of A's objects by id, and is answered exactly as
//!   for a made-up id, while A's token and the node credential read them;
//! * `kill` of an actor by id: B cannot kill A's actor, from A's node or
//!   another, and is answered as for a made-up id; A's actor still answers;
//! * placement groups: B cannot get, wait on, remove, or run work in A's
//!   group, and does not see its bundles in `host list groups`, nor A's
//!   driver sessions in `host list jobs`.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use reef::{Cluster, ErrorCode, ListOptions, PlacementStrategy, Strategy};
use reef_core::wire::{self, Kind, Request};
use reef_core::ReefError;
use reef_proto as pb;
use reef_proto::auth::AttachToken;
use reef_proto::client_op::Op;
use reef_proto::server_reply::Body;
use reef_testkit::{guest, HostProcess, TwoTenants};

fn token_of(file: &Path) -> String {
    std::fs::read_to_string(file).unwrap().trim().to_string()
}

/// An error with the id in it written as `ID`.
fn shape(code: ErrorCode, message: &str, id: u64) -> (ErrorCode, String) {
    let message = message
        .replace(&format!("{id:#x}"), "ID")
        .replace(&id.to_string(), "ID");
    (code, message)
}

/// One raw pull of the whole object `id` from `node` with `token`: its
/// bytes, or the refusal's status and message.
fn raw_pull(node: &HostProcess, token: &str, id: u64) -> Result<Vec<u8>, (wire::Status, String)> {
    let mut conn = std::net::TcpStream::connect(&node.address).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    Request {
        kind: Kind::Pull,
        auth: format!("Bearer {token}").into_bytes(),
        id,
        offset: 0,
        end: u64::MAX,
    }
    .write_to(&mut conn)
    .unwrap();
    conn.flush().unwrap();
    let size = wire::read_reply(&mut conn).unwrap()?;
    let mut bytes = vec![0u8; size as usize];
    std::io::Read::read_exact(&mut conn, &mut bytes).unwrap();
    Ok(bytes)
}

/// Sends one op through a raw session with `token` (as a driver that forged
/// the id would) and returns its reply's body.
async fn session_op(node: &HostProcess, token: &str, op: Op) -> Body {
    let channel = reef_core::channel::connect(&node.address).await.unwrap();
    let mut client =
        pb::node_client::NodeClient::with_interceptor(channel, AttachToken::new(token).unwrap());
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let mut replies = client
        .session(tokio_stream::wrappers::UnboundedReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    tx.send(pb::ClientBatch {
        ops: vec![pb::ClientOp { op: Some(op) }],
    })
    .unwrap();
    loop {
        let batch = replies.message().await.unwrap().unwrap();
        if let Some(r) = batch.replies.into_iter().find(|r| r.req_id == 7) {
            return r.body.expect("a reply body");
        }
    }
}

async fn kill_by_id(
    node: &HostProcess,
    token: &str,
    actor: u64,
) -> Result<(), (ErrorCode, String)> {
    let op = Op::KillActor(pb::KillActor {
        req_id: 7,
        actor_id: actor,
    });
    match session_op(node, token, op).await {
        Body::Ok(_) => Ok(()),
        Body::Error(e) => {
            let e = ReefError::from_proto(e);
            Err(shape(e.code, &e.message, actor))
        }
        other => panic!("kill answered {other:?}"),
    }
}

#[tokio::test]
async fn raw_pulls_read_only_a_tenants_own_objects() {
    let tenants = TwoTenants::start();
    let (head, worker) = (&tenants.head, tenants.worker());
    let (token_a, token_b) = (&tenants.token_a, &tenants.token_b);
    let a = head.connect_as(token_a).await;
    // B's sessions make its token known to both nodes.
    let _b_head = head.connect_as(token_b).await;
    let _b_worker = worker.connect_as(token_b).await;

    let secret: Vec<u8> = (0..(2u32 << 20)).map(|i| (i % 251) as u8).collect();
    let obj = a.put_bytes(&secret).await.unwrap();
    let made_up = obj.id() + (1 << 30);
    let (a_token, b_token) = (token_of(token_a), token_of(token_b));

    assert_eq!(raw_pull(head, &a_token, obj.id()).unwrap(), secret);
    assert_eq!(
        raw_pull(head, &head.node_token(), obj.id()).unwrap(),
        secret
    );
    for node in [&head, &worker] {
        let refused = raw_pull(node, &b_token, obj.id()).unwrap_err();
        assert_eq!(refused.0, wire::Status::NotFound, "{refused:?}");
        let unknown = raw_pull(node, &b_token, made_up).unwrap_err();
        assert_eq!(
            shape(ErrorCode::UnknownObject, &refused.1, obj.id()),
            shape(ErrorCode::UnknownObject, &unknown.1, made_up),
            "B's refusal tells A's object from a made-up id"
        );
    }
    // Shared, B reads it over the same path.
    a.share(&obj, "team-b").await.unwrap();
    assert_eq!(raw_pull(head, &b_token, obj.id()).unwrap(), secret);
}

#[tokio::test]
async fn a_tenant_cannot_kill_another_tenants_actor() {
    let tenants = TwoTenants::start();
    let (head, worker) = (&tenants.head, tenants.worker());
    let (token_a, token_b) = (&tenants.token_a, &tenants.token_b);
    let a = head.connect_as(token_a).await;
    let m = a.register_file(guest("nested")).await.unwrap();
    let counter = a.actor(&m, "Counter").arg(0.0).create().await.unwrap();
    let add = counter.call("add").arg(5.0).submit().unwrap();
    assert_eq!(a.get::<f64>(&add).await.unwrap(), 5.0);

    let b_token = token_of(token_b);
    let made_up = counter.id() + (1 << 30);
    for node in [&head, &worker] {
        let refused = kill_by_id(node, &b_token, counter.id()).await.unwrap_err();
        assert_eq!(refused.0, ErrorCode::UnknownActor, "{refused:?}");
        let unknown = kill_by_id(node, &b_token, made_up).await.unwrap_err();
        assert_eq!(
            refused, unknown,
            "B's refusal tells A's actor from a made-up id"
        );
    }
    // A's actor lives on, its state intact.
    let add = counter.call("add").arg(1.0).submit().unwrap();
    assert_eq!(a.get::<f64>(&add).await.unwrap(), 6.0);
    // A may kill its own, from any node.
    kill_by_id(worker, &token_of(token_a), counter.id())
        .await
        .unwrap();
    let after = counter.call("add").arg(1.0).submit().unwrap();
    let e = a
        .get::<f64>(&after)
        .await
        .expect_err("a killed actor answered");
    assert_eq!(e.code, ErrorCode::ActorDead, "{e:?}");
}

#[tokio::test]
async fn placement_groups_belong_to_their_tenant() {
    let tenants = TwoTenants::on_head(&["--num-cpus", "4"]);
    let head = &tenants.head;
    let (token_a, token_b) = (&tenants.token_a, &tenants.token_b);
    let a = head.connect_as(token_a).await;
    let b = head.connect_as(token_b).await;
    let m = a.register_file(guest("demo")).await.unwrap();
    let mut group = a
        .placement_group(PlacementStrategy::Pack)
        .bundle([("CPU", 1.0)])
        .create()
        .await
        .unwrap();
    group.ready(Duration::from_secs(20)).await.unwrap();
    let task = a
        .task(&m, "echo")
        .arg(reef::Arg::bytes(&b"in A's group"[..]))
        .strategy(group.bundle(0))
        .submit()
        .unwrap();
    assert_eq!(&*a.get_bytes(&task).await.unwrap(), b"in A's group");

    let channel = reef_core::channel::connect(&head.address).await.unwrap();
    let mut groups_b = pb::placement_groups_client::PlacementGroupsClient::with_interceptor(
        channel,
        AttachToken::new(&token_of(token_b)).unwrap(),
    );
    let made_up = group.id() + 1000;
    let refusal = |status: tonic::Status, id: u64| {
        let e = ReefError::from_status(&status);
        shape(e.code, &e.message, id)
    };
    let get = |id| pb::PlacementGroupId { id };
    let refused = refusal(groups_b.get(get(group.id())).await.unwrap_err(), group.id());
    assert_eq!(refused.0, ErrorCode::UnknownPlacementGroup, "{refused:?}");
    assert_eq!(
        refused,
        refusal(groups_b.get(get(made_up)).await.unwrap_err(), made_up)
    );
    let wait = pb::WaitPlacementGroupRequest {
        id: group.id(),
        timeout_ms: 1000,
    };
    let e = refusal(groups_b.wait(wait).await.unwrap_err(), group.id());
    assert_eq!(e, refused);
    let e = refusal(
        groups_b.remove(get(group.id())).await.unwrap_err(),
        group.id(),
    );
    assert_eq!(e, refused);

    // B's work in A's group fails as in a made-up group, and takes none of
    // its CPU.
    let mine = b.register_file(guest("demo")).await.unwrap();
    let squat = b
        .task(&mine, "echo")
        .arg(reef::Arg::bytes(&b"x"[..]))
        .strategy(Strategy::PlacementGroup {
            group: group.id(),
            bundle: Some(0),
        })
        .submit()
        .unwrap();
    let e = b.get_bytes(&squat).await.err().expect("B ran in A's group");
    assert_eq!(e.code, ErrorCode::UnknownPlacementGroup, "{e:?}");

    // Listings: A sees its bundle, B none of it.
    let rows = a.list_groups(&ListOptions::new()).await.unwrap().rows;
    assert!(
        rows.iter().any(|r| r.placement_group_id == group.id()),
        "{rows:?}"
    );
    let rows = b.list_groups(&ListOptions::new()).await.unwrap().rows;
    assert!(
        rows.iter().all(|r| r.placement_group_id != group.id()),
        "{rows:?}"
    );

    // Jobs (driver sessions) carry their tenant: each sees its own.
    let jobs = b.list_jobs(&ListOptions::new()).await.unwrap().rows;
    assert!(!jobs.is_empty(), "B sees none of its own sessions");
    assert!(jobs.iter().all(|j| j.tenant == "team-b"), "{jobs:?}");
    let jobs = a.list_jobs(&ListOptions::new()).await.unwrap().rows;
    assert!(jobs.iter().all(|j| j.tenant == "team-a"), "{jobs:?}");

    // A's group is intact: A removes it.
    group.remove().await.unwrap();
}

/// What submitting `function` of `m` answers (it must fail), with the hash
/// written as `HASH`.
async fn task_refusal(driver: &Cluster, m: &reef::Module) -> (ErrorCode, String) {
    let r = driver
        .task(m, "echo")
        .arg(reef::Arg::bytes(&b"x"[..]))
        .submit()
        .unwrap();
    let e = driver
        .get_bytes_timeout(&r, Duration::from_secs(20))
        .await
        .err()
        .expect("the task ran");
    (e.code, e.message.replace(&m.hash, "HASH"))
}

#[tokio::test]
async fn a_tenant_runs_only_modules_it_or_the_admin_registered() {
    let tenants = TwoTenants::start();
    let (head, worker) = (&tenants.head, tenants.worker());
    let (token_a, token_b) = (&tenants.token_a, &tenants.token_b);
    let a = head.connect_as(token_a).await;
    let b_head = head.connect_as(token_b).await;
    let b_worker = worker.connect_as(token_b).await;
    let demo = a.register_file(guest("demo")).await.unwrap();
    let r = a
        .task(&demo, "echo")
        .arg(reef::Arg::bytes(&b"a runs it"[..]))
        .submit()
        .unwrap();
    assert_eq!(&*a.get_bytes(&r).await.unwrap(), b"a runs it");

    // B knows the hash but did not register it: refused as a made-up hash,
    // on A's node and on another, for tasks and actors.
    let made_up = reef::Module {
        hash: "ab".repeat(32),
        ..demo.clone()
    };
    for b in [&b_head, &b_worker] {
        let refused = task_refusal(b, &demo).await;
        assert_eq!(refused.0, ErrorCode::UnknownModule, "{refused:?}");
        assert_eq!(refused, task_refusal(b, &made_up).await);
    }
    let nested = a.register_file(guest("nested")).await.unwrap();
    let e = b_worker
        .actor(&nested, "Counter")
        .arg(0.0)
        .create()
        .await
        .err()
        .expect("B created an actor of A's module");
    assert_eq!(e.code, ErrorCode::UnknownModule, "{e:?}");

    // Registering the same bytes makes it B's too (one compiled module).
    let mine = b_head.register_file(guest("demo")).await.unwrap();
    assert_eq!(mine.hash, demo.hash);
    let r = b_worker
        .task(&mine, "echo")
        .arg(reef::Arg::bytes(&b"b runs it"[..]))
        .submit()
        .unwrap();
    assert_eq!(&*b_worker.get_bytes(&r).await.unwrap(), b"b runs it");

    // A module the admin registered is public.
    let admin = Cluster::connect_with_token(&head.address, &head.admin_token())
        .await
        .unwrap();
    let public = admin.register_file(guest("dag")).await.unwrap();
    let r = b_worker
        .task(&public, "combine")
        .arg(2.0)
        .arg(3.0)
        .submit()
        .unwrap();
    assert_eq!(b_worker.get::<f64>(&r).await.unwrap(), 5.0);
}
