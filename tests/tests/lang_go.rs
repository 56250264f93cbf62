//! What only the Go guest SDK (guest-sdk/go) has: a module built without build.sh,
//! host calls from inside Go tasks, panics and garbage collections in actors, and the
//! Go piece of the cross-language pipeline (`merge_counts`), against real nodes.
//! What every guest language does alike (the seed demo, the demo's tasks, bad
//! arguments, failures, the actor, the module cache) is in conformance.rs.

use std::collections::BTreeMap;

use reef::{Arg, ErrorCode};
use reef_testkit::{guest, node};
use reef_tests::{still_serving, task_error};

#[tokio::test]
async fn a_go_module_built_without_build_sh_is_refused_clearly() {
    let cluster = node().await;
    // A bare `go build` output: the WASI adapter would have no memory of its own.
    let e = cluster
        .register_file(guest("go_unpatched"))
        .await
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidModule, "{e}");
    assert!(e.message.contains("guest-sdk/go/build.sh"), "{e}");
    let m = cluster.register_file(guest("go_demo")).await.unwrap();
    still_serving(&cluster, &m, None).await;
}

#[tokio::test]
async fn go_tasks_call_the_host() {
    let cluster = node().await;
    let m = cluster.register_file(guest("go_nested")).await.unwrap();

    let data: Vec<u8> = (0..200_000u32).map(|i| (i % 13) as u8).collect();
    let r = cluster
        .task(&m, "put_get")
        .arg(Arg::bytes(data.clone()))
        .submit()
        .unwrap();
    assert_eq!(&cluster.get_bytes(&r).await.unwrap()[..], &data[..]);

    // An object returned by reference, read by the driver and by another Go task.
    let r = cluster
        .task(&m, "make_range")
        .arg(1000u64)
        .submit()
        .unwrap();
    let bytes = cluster.get_bytes(&r).await.unwrap();
    let xs: Vec<f64> = bytes
        .chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(xs.len(), 1000);
    assert_eq!(xs[999], 999.0);
    let demo = cluster.register_file(guest("go_demo")).await.unwrap();
    let s = cluster
        .task(&demo, "sum_slice")
        .arg(&r)
        .arg(0u64)
        .arg(1000u64)
        .submit()
        .unwrap();
    assert_eq!(cluster.get::<f64>(&s).await.unwrap(), 499_500.0);

    let r = cluster
        .task(&m, "range_sum")
        .arg(100_000u64)
        .submit()
        .unwrap();
    assert_eq!(cluster.get::<f64>(&r).await.unwrap(), 4_999_950_000.0);

    let r = cluster
        .task(&m, "submit_add")
        .arg(1.25)
        .arg(2.5)
        .submit()
        .unwrap();
    assert_eq!(cluster.get::<f64>(&r).await.unwrap(), 3.75);

    let r = cluster
        .task(&m, "counter")
        .arg("go-counter")
        .arg(5u64)
        .arg(3u64)
        .submit()
        .unwrap();
    assert_eq!(cluster.get::<u64>(&r).await.unwrap(), 8);
    let counter = cluster.get_actor("go-counter").await.unwrap();
    let r = counter.call("get").submit().unwrap();
    assert_eq!(cluster.get::<u64>(&r).await.unwrap(), 8);

    let r = cluster
        .task(&m, "log")
        .arg("hello from go")
        .submit()
        .unwrap();
    assert_eq!(&cluster.get_bytes(&r).await.unwrap()[..], &[0xc0]);
    let logs = cluster.logs(&r).await.unwrap();
    assert!(
        logs.log.iter().any(|l| l.contains("hello from go")),
        "{logs:?}"
    );
    assert!(logs.stdout.contains("stdout: hello from go"), "{logs:?}");

    // A host error inside a task keeps its code.
    let e = task_error(
        &cluster,
        cluster
            .task(&m, "get_missing")
            .arg(0xdead_beef_u64)
            .submit()
            .unwrap(),
    )
    .await;
    assert_eq!(e.code, ErrorCode::UnknownObject, "{e}");

    // Generic MessagePack decoding.
    let mut map = BTreeMap::new();
    map.insert("k", vec![1i64, -2]);
    let r = cluster
        .task(&m, "describe_value")
        .arg(Arg::value(&map).unwrap())
        .submit()
        .unwrap();
    assert_eq!(
        cluster.get::<String>(&r).await.unwrap(),
        "map map[k:[1 -2]]"
    );
}

#[tokio::test]
async fn go_merge_counts() {
    let cluster = node().await;
    let m = cluster.register_file(guest("pipeline_go")).await.unwrap();
    assert_eq!(m.tasks, vec!["merge_counts".to_string()]);
    let counts = |pairs: &[(&str, u64)]| -> BTreeMap<String, u64> {
        pairs.iter().map(|(w, n)| (w.to_string(), *n)).collect()
    };
    let a = counts(&[("apple", 1), ("banana", 2)]);
    let b = counts(&[("banana", 3), ("cherry", 4)]);
    let c = counts(&[("apple", 10)]);
    // Inline maps and a map stored as an object.
    let c_obj = cluster.put(&c).await.unwrap();
    let r = cluster
        .task(&m, "merge_counts")
        .arg(Arg::value(&a).unwrap())
        .arg(Arg::value(&b).unwrap())
        .arg(&c_obj)
        .submit()
        .unwrap();
    assert_eq!(
        cluster.get::<BTreeMap<String, u64>>(&r).await.unwrap(),
        counts(&[("apple", 11), ("banana", 5), ("cherry", 4)])
    );
    // No maps: an empty map; one map: itself.
    let r = cluster.task(&m, "merge_counts").submit().unwrap();
    assert!(cluster
        .get::<BTreeMap<String, u64>>(&r)
        .await
        .unwrap()
        .is_empty());
    let r = cluster
        .task(&m, "merge_counts")
        .arg(Arg::value(&a).unwrap())
        .submit()
        .unwrap();
    assert_eq!(cluster.get::<BTreeMap<String, u64>>(&r).await.unwrap(), a);
    // Not a map of counts.
    let e = task_error(
        &cluster,
        cluster
            .task(&m, "merge_counts")
            .arg(Arg::value(&a).unwrap())
            .arg("words")
            .submit()
            .unwrap(),
    )
    .await;
    assert_eq!(e.code, ErrorCode::BadArgument, "{e}");
    assert!(e.message.contains("argument 1"), "{e}");
    let bad: BTreeMap<String, i64> = [("x".to_string(), -1)].into_iter().collect();
    let e = task_error(
        &cluster,
        cluster
            .task(&m, "merge_counts")
            .arg(Arg::value(&bad).unwrap())
            .submit()
            .unwrap(),
    )
    .await;
    assert_eq!(e.code, ErrorCode::BadArgument, "{e}");
}

#[tokio::test]
async fn go_actor_survives_many_calls_with_garbage_collections() {
    let cluster = node().await;
    let m = cluster.register_file(guest("go_nested")).await.unwrap();
    let counter = cluster.actor(&m, "Counter").create().await.unwrap();
    // Arguments alternate between small ones and ones larger than the SDK's static
    // transfer arena (placed on the Go heap while the collector is off); each call makes
    // garbage so that collections run inside calls.
    let small = vec![7u8; 1000];
    let large = vec![9u8; 1_500_000];
    for i in 0..40u64 {
        let data = if i % 2 == 0 { &small } else { &large };
        let r = counter
            .call("churn")
            .arg(Arg::bytes(data.clone()))
            .arg(20u64)
            .submit()
            .unwrap();
        assert_eq!(
            cluster.get::<u64>(&r).await.unwrap(),
            data.len() as u64,
            "call {i}"
        );
    }
    let r = counter.call("get").submit().unwrap();
    assert_eq!(cluster.get::<u64>(&r).await.unwrap(), 40);
}

#[tokio::test]
async fn go_panic_in_an_actor_method() {
    let cluster = node().await;
    let m = cluster.register_file(guest("go_nested")).await.unwrap();
    let counter = cluster.actor(&m, "Counter").create().await.unwrap();
    let r = counter.call("add").arg(2u64).submit().unwrap();
    assert_eq!(cluster.get::<u64>(&r).await.unwrap(), 2);
    let e = task_error(
        &cluster,
        counter.call("boom").arg("actor boom").submit().unwrap(),
    )
    .await;
    assert_eq!(e.code, ErrorCode::GuestPanic, "{e}");
    assert!(e.message.contains("actor boom"), "{e}");
    // The actor is gone: ACTOR_DEAD with the reason while the node still knows it,
    // UNKNOWN_ACTOR once it has been removed (the node does that right after the trap).
    let e = task_error(&cluster, counter.call("get").submit().unwrap()).await;
    match e.code {
        ErrorCode::ActorDead => assert!(e.message.contains("actor boom"), "{e}"),
        ErrorCode::UnknownActor => {}
        _ => panic!("a call to a dead actor: {e}"),
    }
    // A Go runtime error (assignment to a nil map) is a panic too.
    let other = cluster.actor(&m, "Counter").create().await.unwrap();
    let e = task_error(
        &cluster,
        other.call("boom").arg("nil map").submit().unwrap(),
    )
    .await;
    assert_eq!(e.code, ErrorCode::GuestPanic, "{e}");
    assert!(e.message.contains("assignment to entry in nil map"), "{e}");
    // Other actors and tasks carry on.
    let third = cluster
        .actor(&m, "Counter")
        .arg(1u64)
        .create()
        .await
        .unwrap();
    let r = third.call("add").arg(1u64).submit().unwrap();
    assert_eq!(cluster.get::<u64>(&r).await.unwrap(), 2);
}
