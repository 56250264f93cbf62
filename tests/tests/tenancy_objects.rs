//! Objects and names belong to a tenant, against a head and a worker (real
//! `host` processes): tenant B cannot get, wait on, pass as an argument or
//! pin tenant A's object by its id — from A's node or another — and is
//! answered exactly as for a made-up id; after `share(ref, B)` it can. Two
//! tenants each have their own actor named `model`, and B cannot call A's
//! actor by its id.

use std::time::Duration;

use reef::{Arg, Cluster, ErrorCode, ListOptions, ObjectRef};
use reef_core::ReefError;
use reef_proto as pb;
use reef_proto::auth::AttachToken;
use reef_proto::client_op::Op;
use reef_proto::server_reply::Body;
use reef_testkit::{guest, HostProcess, TwoTenants};

/// An error with the id in it written as `ID`.
fn shape(e: &reef::Error, id: u64) -> (ErrorCode, String) {
    (e.code, e.message.replace(&format!("{id:#x}"), "ID"))
}

/// What `get` of `r` answers (it must fail).
async fn get_error(driver: &Cluster, r: &ObjectRef) -> (ErrorCode, String) {
    let e = driver
        .get_bytes_timeout(r, Duration::from_secs(20))
        .await
        .err()
        .unwrap_or_else(|| panic!("{r:?} was read"));
    shape(&e, r.id())
}

/// What a task given `r` as its argument answers (it must fail).
async fn task_error(driver: &Cluster, m: &reef::Module, r: &ObjectRef) -> (ErrorCode, String) {
    let own = driver.put_bytes(b"own").await.unwrap();
    let task = driver
        .task(m, "view_len")
        .arg(&own)
        .arg(Arg::bytes(&b"x"[..]))
        .arg(r)
        .submit()
        .unwrap();
    let e = driver
        .get_bytes_timeout(&task, Duration::from_secs(20))
        .await
        .err()
        .unwrap_or_else(|| panic!("a task given {r:?} ran"));
    shape(&e, r.id())
}

#[tokio::test]
async fn a_tenants_objects_are_its_own_until_shared() {
    let tenants = TwoTenants::start();
    let (head, worker) = (&tenants.head, tenants.worker());
    let (token_a, token_b) = (&tenants.token_a, &tenants.token_b);
    let a = head.connect_as(token_a).await;
    // B on A's node (the owner answers at once) and on another (it asks).
    let b_here = head.connect_as(token_b).await;
    let b_there = worker.connect_as(token_b).await;
    let m = a.register_file(guest("demo")).await.unwrap();
    // B registers the same bytes: the same module, which B may run too.
    b_here.register_file(guest("demo")).await.unwrap();

    let secret = a.put_bytes(b"team-a's secret").await.unwrap();
    let result = a
        .task(&m, "echo")
        .arg(Arg::bytes(&b"result"[..]))
        .submit()
        .unwrap();
    assert_eq!(&*a.get_bytes(&result).await.unwrap(), b"result");

    for b in [&b_here, &b_there] {
        for target in [&secret, &result] {
            let forged = b.object_ref(target.id());
            // A made-up id of the same owner, never allocated.
            let made_up = b.object_ref(target.id() + (1 << 30));
            let refused = get_error(b, &forged).await;
            assert_eq!(refused.0, ErrorCode::UnknownObject, "{refused:?}");
            assert_eq!(refused, get_error(b, &made_up).await);
            let refused = task_error(b, &m, &forged).await;
            assert_eq!(refused, task_error(b, &m, &made_up).await);
            // `wait` reports it at once, as it does an unknown id.
            let (ready, _) = b
                .wait(
                    std::slice::from_ref(&forged),
                    1,
                    Some(Duration::from_secs(20)),
                )
                .await
                .unwrap();
            assert_eq!(ready.len(), 1);
            // Nor can B share what it may not use.
            let e = b.share(&forged, "team-b").await.unwrap_err();
            assert_eq!(shape(&e, forged.id()), refused);
        }
    }

    // Listings show each tenant the objects it may use.
    let listed = |rows: reef::Listing<reef::ObjectInfo>| -> Vec<u64> {
        rows.rows.iter().map(|o| o.object_id).collect()
    };
    let a_sees = listed(a.list_objects(&ListOptions::new()).await.unwrap());
    assert!(
        a_sees.contains(&secret.id()) && a_sees.contains(&result.id()),
        "{a_sees:x?}"
    );
    for b in [&b_here, &b_there] {
        let b_sees = listed(b.list_objects(&ListOptions::new()).await.unwrap());
        assert!(!b_sees.contains(&secret.id()), "{b_sees:x?}");
        assert!(!b_sees.contains(&result.id()), "{b_sees:x?}");
    }

    // A's object still there after B's forged handles were dropped
    // (releases of ids B does not hold do nothing).
    assert_eq!(&*a.get_bytes(&secret).await.unwrap(), b"team-a's secret");

    // Only with a tenant that exists (a made-up name is refused, typed).
    let e = a.share(&secret, "team-nobody").await.unwrap_err();
    assert_eq!(e.code, ErrorCode::BadArgument, "{e}");
    assert!(e.message.contains("\"team-nobody\": no such tenant"), "{e}");

    // Shared: B reads it and passes it to its tasks, from either node; the
    // results of B's tasks are B's own.
    a.share(&secret, "team-b").await.unwrap();
    for b in [&b_here, &b_there] {
        let shared = b.object_ref(secret.id());
        assert_eq!(&*b.get_bytes(&shared).await.unwrap(), b"team-a's secret");
        let len = b.task(&m, "view_len").arg(&shared).submit().unwrap();
        assert_eq!(b.get::<u64>(&len).await.unwrap(), 15);
        let by_a = a.object_ref(len.id());
        assert_eq!(get_error(&a, &by_a).await.0, ErrorCode::UnknownObject);
    }
    let b_sees = listed(b_there.list_objects(&ListOptions::new()).await.unwrap());
    assert!(b_sees.contains(&secret.id()), "{b_sees:x?}");
    // Only what was shared: A's task result is still A's alone.
    let forged = b_there.object_ref(result.id());
    assert_eq!(
        get_error(&b_there, &forged).await.0,
        ErrorCode::UnknownObject
    );

    // The admin uses any object.
    let admin = Cluster::connect_with_token(&worker.address, &head.admin_token())
        .await
        .unwrap();
    let r = admin.object_ref(result.id());
    assert_eq!(&*admin.get_bytes(&r).await.unwrap(), b"result");
}

#[tokio::test]
async fn wait_tells_nothing_of_a_foreign_pending_object() {
    let tenants = TwoTenants::on_head(&[]);
    let head = &tenants.head;
    let (token_a, token_b) = (&tenants.token_a, &tenants.token_b);
    let a = head.connect_as(token_a).await;
    let b = head.connect_as(token_b).await;
    let m = a.register_file(guest("nested")).await.unwrap();
    let slow = a
        .task(&m, "pause")
        .arg(60_000u64)
        .arg(1.0)
        .submit()
        .unwrap();
    // Were B allowed to wait on it, it would not be ready within the timeout.
    let forged = b.object_ref(slow.id());
    let (ready, _) = b
        .wait(
            std::slice::from_ref(&forged),
            1,
            Some(Duration::from_secs(3)),
        )
        .await
        .unwrap();
    assert_eq!(ready.len(), 1, "B's wait saw A's pending task");
    // Nor can B cancel it: it still runs after B asked.
    b.cancel(&forged).unwrap();
    let (ready, _) = a
        .wait(
            std::slice::from_ref(&slow),
            1,
            Some(Duration::from_millis(500)),
        )
        .await
        .unwrap();
    assert!(ready.is_empty(), "B cancelled A's task");
}

/// Calls `method` of actor `actor` and gets the result through a raw
/// session with `token`, as a driver that forged the id would.
async fn call_by_id(node: &HostProcess, token: &str, actor: u64) -> ReefError {
    let channel = reef_core::channel::connect(&node.address).await.unwrap();
    let mut client =
        pb::node_client::NodeClient::with_interceptor(channel, AttachToken::new(token).unwrap());
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let mut replies = client
        .session(tokio_stream::wrappers::UnboundedReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    let mut prefix = None;
    while prefix.is_none() {
        let batch = replies.message().await.unwrap().unwrap();
        for r in batch.replies {
            if let Some(Body::Hello(h)) = r.body {
                prefix = Some(h.id_prefix);
            }
        }
    }
    let return_id = reef_core::IdPrefix(prefix.unwrap()).object(1).0;
    let ops = vec![
        Op::CallActor(pb::CallActor {
            actor_id: actor,
            return_id,
            method: "total".into(),
            ..Default::default()
        }),
        Op::Get(pb::Get {
            req_id: 7,
            ids: vec![return_id],
            timeout_ms: 20_000,
            ..Default::default()
        }),
    ];
    let ops = ops
        .into_iter()
        .map(|op| pb::ClientOp { op: Some(op) })
        .collect();
    tx.send(pb::ClientBatch { ops }).unwrap();
    loop {
        let batch = replies.message().await.unwrap().unwrap();
        let Some(r) = batch.replies.into_iter().find(|r| r.req_id == 7) else {
            continue;
        };
        let Some(Body::Get(g)) = r.body else {
            panic!("{r:?}")
        };
        match g.values[0].value.clone() {
            Some(pb::object_value::Value::Error(e)) => return ReefError::from_proto(e),
            other => panic!("the call answered {other:?}"),
        }
    }
}

#[tokio::test]
async fn each_tenant_has_its_own_actor_names() {
    let tenants = TwoTenants::on_head(&[]);
    let head = &tenants.head;
    let (token_a, token_b) = (&tenants.token_a, &tenants.token_b);
    let a = head.connect_as(token_a).await;
    let b = head.connect_as(token_b).await;
    let m = a.register_file(guest("nested")).await.unwrap();
    b.register_file(guest("nested")).await.unwrap();

    let model_a = a
        .actor(&m, "Counter")
        .arg(100.0)
        .name("model")
        .create()
        .await
        .unwrap();
    let model_b = b
        .actor(&m, "Counter")
        .arg(200.0)
        .name("model")
        .create()
        .await
        .unwrap();
    assert_ne!(model_a.id(), model_b.id());
    let only_a = a
        .actor(&m, "Counter")
        .name("only-a")
        .create()
        .await
        .unwrap();
    assert_eq!(a.get_actor("model").await.unwrap().id(), model_a.id());
    assert_eq!(b.get_actor("model").await.unwrap().id(), model_b.id());
    let e = b
        .get_actor("only-a")
        .await
        .err()
        .expect("B found A's actor");
    assert_eq!(e.code, ErrorCode::UnknownActor, "{e}");

    // A guest resolves names in its tenant's namespace.
    let added = b
        .task(&m, "call_named")
        .arg("model")
        .arg(1.0)
        .submit()
        .unwrap();
    assert_eq!(b.get::<f64>(&added).await.unwrap(), 201.0);
    let added = a
        .task(&m, "call_named")
        .arg("model")
        .arg(1.0)
        .submit()
        .unwrap();
    assert_eq!(a.get::<f64>(&added).await.unwrap(), 101.0);
    let refused = b
        .task(&m, "call_named")
        .arg("only-a")
        .arg(1.0)
        .submit()
        .unwrap();
    let e = b
        .get_bytes(&refused)
        .await
        .err()
        .expect("B's guest called A's actor");
    assert_eq!(e.code, ErrorCode::UnknownActor, "{e}");
    assert!(
        e.message.contains("`only-a`") && !e.message.contains("team-a"),
        "{e}"
    );

    // B cannot call A's actor by its id: answered as a made-up id is.
    let token_b = std::fs::read_to_string(token_b).unwrap();
    let token_b = token_b.trim();
    let made_up = call_by_id(head, token_b, only_a.id() + 1000).await;
    let answered_as_made_up = |refused: &ReefError| {
        assert_eq!(refused.code, ErrorCode::UnknownActor, "{refused}");
        assert_eq!(
            refused.message.replace(&only_a.id().to_string(), "ID"),
            made_up
                .message
                .replace(&(only_a.id() + 1000).to_string(), "ID")
        );
    };
    answered_as_made_up(&call_by_id(head, token_b, only_a.id()).await);
    // A's own call goes through, and the counters are untouched by B.
    let total = model_a.call("total").submit().unwrap();
    assert_eq!(a.get::<f64>(&total).await.unwrap(), 101.0);
    let total = model_b.call("total").submit().unwrap();
    assert_eq!(b.get::<f64>(&total).await.unwrap(), 201.0);

    // Once A's actor is dead, B is still told there is no such actor (not
    // that it died); A hears of its death.
    only_a.kill().await.unwrap();
    let dead = only_a.call("total").submit().unwrap();
    let e = a.get::<f64>(&dead).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::ActorDead, "{e}");
    answered_as_made_up(&call_by_id(head, token_b, only_a.id()).await);
}

/// Through a node that never knew A's actor (it only looks the actor up in
/// the control plane's directory), B's call of it by its id is answered as
/// a made-up id is, alive or dead; A itself is told that it died.
#[tokio::test]
async fn another_node_answers_a_foreign_actor_as_a_made_up_id_alive_or_dead() {
    let tenants = TwoTenants::start();
    let (head, worker) = (&tenants.head, tenants.worker());
    let a = head.connect_as(&tenants.token_a).await;
    let m = a.register_file(guest("nested")).await.unwrap();
    let status = a.status().await.unwrap();
    let head_id = status
        .nodes
        .iter()
        .find(|n| n.head)
        .unwrap()
        .node_id
        .clone();
    // Both on the head: the worker hears of them only from the directory.
    let on_head = || {
        a.actor(&m, "Counter")
            .arg(1.0)
            .strategy(reef::Strategy::NodeAffinity {
                node_id: head_id.clone(),
                soft: false,
            })
            .create()
    };
    let (alive, dead) = (on_head().await.unwrap(), on_head().await.unwrap());
    let total = alive.call("total").submit().unwrap();
    assert_eq!(a.get::<f64>(&total).await.unwrap(), 1.0);
    dead.kill().await.unwrap();
    let token = |path: &std::path::Path| std::fs::read_to_string(path).unwrap().trim().to_owned();
    let (token_a, token_b) = (token(&tenants.token_a), token(&tenants.token_b));

    let made_up_id = alive.id() + 1000;
    let made_up = call_by_id(worker, &token_b, made_up_id).await;
    assert_eq!(made_up.code, ErrorCode::UnknownActor, "{made_up}");
    let shape = |e: &ReefError, id: u64| (e.code, e.message.replace(&id.to_string(), "ID"));
    for actor in [alive.id(), dead.id()] {
        let refused = call_by_id(worker, &token_b, actor).await;
        assert_eq!(shape(&refused, actor), shape(&made_up, made_up_id));
    }
    let own = call_by_id(worker, &token_a, dead.id()).await;
    assert_eq!(own.code, ErrorCode::ActorDead, "{own}");
}

/// An actor whose creation failed on the node it was placed on (there, over
/// its tenant's instances quota) is answered to another tenant's call of it
/// there as a made-up id is; its own tenant hears why it failed.
#[tokio::test]
async fn a_foreign_actor_whose_creation_failed_is_answered_as_a_made_up_id() {
    let tenants = TwoTenants::start();
    let (head, worker) = (&tenants.head, tenants.worker());
    let set = head.admin_cli(&["tenant", "set", "team-a", "--max-instances", "1"]);
    assert!(set.status.success(), "{set:?}");
    let a = head.connect_as(&tenants.token_a).await;
    let m = a.register_file(guest("nested")).await.unwrap();
    let worker_id = a
        .status()
        .await
        .unwrap()
        .nodes
        .into_iter()
        .find(|n| !n.head)
        .unwrap()
        .node_id;
    let on_worker = || {
        a.actor(&m, "Counter")
            .arg(1.0)
            .strategy(reef::Strategy::NodeAffinity {
                node_id: worker_id.clone(),
                soft: false,
            })
            .create()
    };
    // The first holds A's one instance on the worker; a second fails there
    // once the quota reached the worker (until then it is made, and killed).
    let first = on_worker().await.unwrap();
    let total = first.call("total").submit().unwrap();
    assert_eq!(a.get::<f64>(&total).await.unwrap(), 1.0);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let (failed, cause) = loop {
        // (Refused at once while a killed one's place is being given back.)
        if let Ok(second) = on_worker().await {
            let total = second.call("total").submit().unwrap();
            match a.get::<f64>(&total).await {
                Ok(_) => second.kill().await.unwrap(),
                Err(e) => break (second, e),
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the quota never reached the worker"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        cause.message.contains("instances quota 1 exceeded"),
        "{cause}"
    );
    let token = |path: &std::path::Path| std::fs::read_to_string(path).unwrap().trim().to_owned();
    let (token_a, token_b) = (token(&tenants.token_a), token(&tenants.token_b));
    let made_up_id = failed.id() + 1000;
    let made_up = call_by_id(worker, &token_b, made_up_id).await;
    let shape = |e: &ReefError, id: u64| (e.code, e.message.replace(&id.to_string(), "ID"));
    let refused = call_by_id(worker, &token_b, failed.id()).await;
    assert_eq!(shape(&refused, failed.id()), shape(&made_up, made_up_id));
    let own = call_by_id(worker, &token_a, failed.id()).await;
    assert!(own.message.contains("instances quota 1 exceeded"), "{own}");
}
