//! The JavaScript/TypeScript guest SDK (guest-sdk/js, componentize-js): the seed demo
//! in JS and in TS, the compiled-module cache, plain tasks and bad arguments, a thrown
//! Error (text and JS stack reach the driver, the node survives), the SDK's surface from
//! inside a task (put/get, nested tasks, named actors, logs), and the pipeline's
//! `Totals` actor.
//!
//! Modules: target/guests/js_demo.wasm, ts_demo.wasm and pipeline_js.wasm, built by
//! guest-sdk/js/build-examples.sh (scripts/build-guests.sh runs it). Each module is
//! compiled once per node (~20 s for a 12 MB SpiderMonkey component), so the tests
//! are few and each covers a lot.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use reef::{Arg, Cluster, ErrorCode, Module};
use reef_tests::{add, assert_seed_demo, guest, node, task_error, HostProcess};

/// The seed demo in JS and in TS. The JS module is compiled on the first node and
/// loaded from the compiled-artifact cache by a restarted node on the same data dir,
/// which then runs the JS and TS checks below.
#[tokio::test]
async fn seed_demo_in_js_and_ts_and_cached_registration() {
    let dir = tempfile::tempdir().unwrap();
    let first = {
        let node = HostProcess::start(dir.path(), &["--object-store-memory", "256MiB"]);
        let cluster = node.connect().await;
        let t = Instant::now();
        let m = cluster.register_file(guest("js_demo")).await.unwrap();
        let first = t.elapsed();
        assert!(!m.cached);
        assert_eq!(m.sdk, "reef-guest-js/0.1.0");
        assert_seed_demo(&cluster, &guest("js_demo")).await;
        first
    };
    let node = HostProcess::start(dir.path(), &["--object-store-memory", "256MiB"]);
    let cluster = node.connect().await;
    let t = Instant::now();
    let m = cluster.register_file(guest("js_demo")).await.unwrap();
    let cached = t.elapsed();
    assert!(m.cached, "a restarted node should load the compiled module");
    assert!(
        cached < first / 4 && cached < Duration::from_secs(5),
        "cached registration {cached:?} vs first {first:?}"
    );
    eprintln!("js_demo registration: first {first:?}, cached {cached:?}");
    assert_seed_demo(&cluster, &guest("js_demo")).await;
    assert_seed_demo(&cluster, &guest("ts_demo")).await;

    // The rest runs on this node too: each module compiles once (~20 s of CPU each).
    js_tasks_bad_arguments_and_a_thrown_error(&cluster, &m).await;
    let ts = cluster.register_file(guest("ts_demo")).await.unwrap();
    typescript_guest_uses_the_whole_sdk(&cluster, &ts).await;
}

/// describe, echo/add/noop, bad arguments, unknown names, a thrown Error (text and JS
/// stack reach the driver, the node keeps serving and keeps its objects), the actor.
async fn js_tasks_bad_arguments_and_a_thrown_error(cluster: &Cluster, m: &Module) {
    let (cluster, m) = (cluster.clone(), m.clone());
    assert_eq!(m.sdk, "reef-guest-js/0.1.0");
    for t in ["sum_slice", "noop", "echo", "add", "fail"] {
        assert!(m.tasks.iter().any(|x| x == t), "{t} missing: {:?}", m.tasks);
    }
    assert_eq!(
        m.actors,
        vec![(
            "Accumulator".to_string(),
            vec!["add".to_string(), "total".to_string()]
        )]
    );

    // add: floats, and integers where floats are asked for; the result is a float64.
    assert_eq!(add(&cluster, &m, 20.0, 22.0).await, 42.0);
    let r = cluster
        .task(&m, "add")
        .arg(2u64)
        .arg(-5i64)
        .submit()
        .unwrap();
    assert_eq!(
        &cluster.get_bytes(&r).await.unwrap()[..],
        &[0xcb, 0xc0, 0x08, 0, 0, 0, 0, 0, 0]
    );

    // noop -> nil.
    let r = cluster.task(&m, "noop").submit().unwrap();
    assert_eq!(&cluster.get_bytes(&r).await.unwrap()[..], &[0xc0]);

    // echo: raw bytes back, inline (not MessagePack) and as an arena object.
    let raw = vec![0xc1u8, 0, 255, 7, b'\n'];
    let r = cluster
        .task(&m, "echo")
        .arg(Arg::bytes(raw.clone()))
        .submit()
        .unwrap();
    assert_eq!(&cluster.get_bytes(&r).await.unwrap()[..], &raw[..]);
    let big: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let obj = cluster.put_bytes(&big).await.unwrap();
    let r = cluster.task(&m, "echo").arg(&obj).submit().unwrap();
    assert_eq!(&cluster.get_bytes(&r).await.unwrap()[..], &big[..]);

    // sum_slice over a small object.
    let xs: Vec<f64> = (0..1000u64).map(|i| i as f64).collect();
    let data = cluster.put_f64s(&xs).await.unwrap();
    let r = cluster
        .task(&m, "sum_slice")
        .arg(&data)
        .arg(10u64)
        .arg(20u64)
        .submit()
        .unwrap();
    assert_eq!(cluster.get::<f64>(&r).await.unwrap(), 145.0);

    // Bad arguments: BAD_ARGUMENT naming the argument.
    let e = task_error(&cluster, cluster.task(&m, "add").arg(1.0).submit().unwrap()).await;
    assert_eq!(e.code, ErrorCode::BadArgument, "{e}");
    assert!(e.message.contains("expects 2 arguments, got 1"), "{e}");
    let e = task_error(
        &cluster,
        cluster
            .task(&m, "add")
            .arg("one")
            .arg(2.0)
            .submit()
            .unwrap(),
    )
    .await;
    assert_eq!(e.code, ErrorCode::BadArgument, "{e}");
    assert!(
        e.message.contains("argument 0: expected f64, got str"),
        "{e}"
    );
    let e = task_error(
        &cluster,
        cluster
            .task(&m, "sum_slice")
            .arg(1.0)
            .arg(0u64)
            .arg(1u64)
            .submit()
            .unwrap(),
    )
    .await;
    assert_eq!(e.code, ErrorCode::BadArgument, "{e}");
    assert!(e.message.contains("expected an object"), "{e}");
    let e = task_error(
        &cluster,
        cluster
            .task(&m, "sum_slice")
            .arg(&data)
            .arg(0u64)
            .arg(-1i64)
            .submit()
            .unwrap(),
    )
    .await;
    assert_eq!(e.code, ErrorCode::BadArgument, "{e}");
    let e = task_error(&cluster, cluster.task(&m, "no_such_task").submit().unwrap()).await;
    assert_eq!(e.code, ErrorCode::UnknownFunction, "{e}");
    assert!(e.message.contains("no_such_task"), "{e}");

    // A thrown Error: the driver gets its text and the JS stack; the node survives.
    let kept = cluster.put_bytes(&[9u8; 200_000]).await.unwrap();
    let r = cluster.task(&m, "fail").arg("boom 42").submit().unwrap();
    let e = task_error(&cluster, r.clone()).await;
    assert_eq!(e.code, ErrorCode::GuestError, "{e}");
    assert!(e.message.starts_with("Error: boom 42"), "{}", e.message);
    assert!(
        e.message.contains("Stack (most recent call first):"),
        "{}",
        e.message
    );
    assert!(e.message.contains("fail@js_demo.js:"), "{}", e.message);
    let logs = cluster.logs(&r).await.unwrap();
    assert!(
        logs.log
            .iter()
            .any(|l| l.contains("about to fail with boom 42")),
        "{logs:?}"
    );
    for i in 0..3 {
        assert_eq!(add(&cluster, &m, i as f64, 1.0).await, i as f64 + 1.0);
    }
    assert_eq!(
        &cluster.get_bytes(&kept).await.unwrap()[..],
        &[9u8; 200_000][..]
    );

    // Reading an object holds it twice in guest memory (the lifted list, then the JS
    // ArrayBuffer): past the call's memory limit that is MEMORY_LIMIT, not a crash.
    let big = vec![1.0f64; 6 << 20]; // 48 MiB
    let big = cluster.put_f64s(&big).await.unwrap();
    let r = cluster
        .task(&m, "sum_slice")
        .arg(&big)
        .arg(0u64)
        .arg(2u64)
        .memory_limit(64 << 20)
        .submit()
        .unwrap();
    let e = task_error(&cluster, r).await;
    assert_eq!(e.code, ErrorCode::MemoryLimit, "{e}");
    let r = cluster
        .task(&m, "sum_slice")
        .arg(&big)
        .arg(0u64)
        .arg(2u64)
        .submit()
        .unwrap();
    assert_eq!(cluster.get::<f64>(&r).await.unwrap(), 2.0);
    drop(big);

    // The actor: creation arguments, the running total, bad calls fail only the call.
    let acc = cluster
        .actor(&m, "Accumulator")
        .arg(1.5)
        .create()
        .await
        .unwrap();
    let r = acc.call("add").arg(2u64).submit().unwrap();
    assert_eq!(cluster.get::<f64>(&r).await.unwrap(), 3.5);
    let e = task_error(&cluster, acc.call("add").arg("x").submit().unwrap()).await;
    assert_eq!(e.code, ErrorCode::BadArgument, "{e}");
    let e = task_error(&cluster, acc.call("nope").submit().unwrap()).await;
    assert_eq!(e.code, ErrorCode::UnknownFunction, "{e}");
    let r = acc.call("total").submit().unwrap();
    assert_eq!(cluster.get::<f64>(&r).await.unwrap(), 3.5);
    let e = cluster
        .actor(&m, "NoSuchClass")
        .create()
        .await
        .err()
        .unwrap();
    assert_eq!(e.code, ErrorCode::UnknownFunction, "{e}");
}

/// The TypeScript demo: a thrown TypeError with its stack, and the SDK's surface used
/// from inside tasks (put/get, nested tasks, named actors, logs).
async fn typescript_guest_uses_the_whole_sdk(cluster: &Cluster, m: &Module) {
    let (cluster, m) = (cluster.clone(), m.clone());

    let r = cluster.task(&m, "fail").arg("bad ts").submit().unwrap();
    let e = task_error(&cluster, r).await;
    assert_eq!(e.code, ErrorCode::GuestError, "{e}");
    assert!(e.message.starts_with("TypeError: bad ts"), "{}", e.message);
    assert!(e.message.contains("explode@ts_demo.js:"), "{}", e.message);

    // put a structured value as an object and read it back.
    let value = (String::from("x"), vec![1u64, 2, 3], true);
    let r = cluster
        .task(&m, "put_get")
        .arg(Arg::value(&value).unwrap())
        .submit()
        .unwrap();
    assert_eq!(
        cluster.get::<(String, Vec<u64>, bool)>(&r).await.unwrap(),
        value
    );
    let logs = cluster.logs(&r).await.unwrap();
    assert!(
        logs.log.iter().any(|l| l.contains("put object")),
        "{logs:?}"
    );

    // Nested tasks.
    let r = cluster
        .task(&m, "nested_add")
        .arg(40.0)
        .arg(2.0)
        .submit()
        .unwrap();
    assert_eq!(cluster.get::<f64>(&r).await.unwrap(), 42.0);
    let xs: Vec<f64> = (0..100_000u64).map(|i| i as f64).collect();
    let data = cluster.put_f64s(&xs).await.unwrap();
    let r = cluster
        .task(&m, "nested_sum")
        .arg(&data)
        .arg(3u64)
        .submit()
        .unwrap();
    assert_eq!(
        cluster.get::<f64>(&r).await.unwrap(),
        xs.iter().sum::<f64>()
    );

    // A map result with float64 fields.
    let r = cluster.task(&m, "stats").arg(&data).submit().unwrap();
    let stats: BTreeMap<String, f64> = cluster.get(&r).await.unwrap();
    assert_eq!(stats["n"], 100_000.0);
    assert_eq!(stats["max"], 99_999.0);
    assert_eq!(stats["mean"], 49_999.5);

    // Named actors from inside a task; the driver finds the same actor.
    let r = cluster
        .task(&m, "actor_roundtrip")
        .arg("ts-acc")
        .submit()
        .unwrap();
    assert_eq!(cluster.get::<Vec<f64>>(&r).await.unwrap(), vec![6.0, 6.0]);
    let acc = cluster.get_actor("ts-acc").await.unwrap();
    let r = acc.call("add").arg(4.0).submit().unwrap();
    assert_eq!(cluster.get::<f64>(&r).await.unwrap(), 10.0);
}

/// The pipeline's actor: running totals of word counts and the top words.
#[tokio::test]
async fn totals_adds_maps_and_ranks_words() {
    let cluster = node().await;
    let m = cluster.register_file(guest("pipeline_js")).await.unwrap();
    assert_eq!(
        m.actors,
        vec![(
            "Totals".to_string(),
            vec!["add".to_string(), "top".to_string()]
        )]
    );
    let totals = cluster.actor(&m, "Totals").create().await.unwrap();
    let counts = |pairs: &[(&str, u64)]| {
        let map: BTreeMap<String, u64> = pairs.iter().map(|(w, n)| (w.to_string(), *n)).collect();
        Arg::value(&map).unwrap()
    };
    let r = totals
        .call("add")
        .arg(counts(&[("the", 3), ("fox", 1), ("dog", 1)]))
        .submit()
        .unwrap();
    assert_eq!(cluster.get::<u64>(&r).await.unwrap(), 3);
    // A map that arrives as an object (as merge_counts' result does).
    let map: BTreeMap<String, u64> = [("fox", 2u64), ("cat", 4), ("dog", 1)]
        .iter()
        .map(|(w, n)| (w.to_string(), *n))
        .collect();
    let obj = cluster.put(&map).await.unwrap();
    let r = totals.call("add").arg(&obj).submit().unwrap();
    assert_eq!(cluster.get::<u64>(&r).await.unwrap(), 4);
    // Sorted by count desc, then word asc: cat 4, fox 3, the 3, dog 2.
    let r = totals.call("top").arg(3u64).submit().unwrap();
    assert_eq!(
        cluster.get::<Vec<(String, u64)>>(&r).await.unwrap(),
        vec![
            ("cat".to_string(), 4),
            ("fox".to_string(), 3),
            ("the".to_string(), 3)
        ]
    );
    let r = totals.call("top").arg(10u64).submit().unwrap();
    assert_eq!(
        cluster.get::<Vec<(String, u64)>>(&r).await.unwrap().len(),
        4
    );
    // A bad map fails the call, not the actor.
    let e = task_error(
        &cluster,
        totals
            .call("add")
            .arg(Arg::value(&vec![1u64]).unwrap())
            .submit()
            .unwrap(),
    )
    .await;
    assert_eq!(e.code, ErrorCode::BadArgument, "{e}");
    let r = totals.call("top").arg(1u64).submit().unwrap();
    assert_eq!(
        cluster.get::<Vec<(String, u64)>>(&r).await.unwrap(),
        vec![("cat".to_string(), 4)]
    );
}

/// The figures in guest-sdk/js/README.md, for any modules with the demo's `noop` and
/// `sum_slice` (`REEF_JS_MEASURE=target/guests/js_demo.wasm,target/guests/demo.wasm`):
/// size, first and cached registration, noop round trip (fresh instance included), and
/// `sum_slice` over a 64 MiB object, whole and with an empty range (the read alone).
///
/// `cargo test --release -p reef-tests --test lang_js -- --ignored --nocapture measure`
#[tokio::test(flavor = "multi_thread")]
#[ignore]
async fn measure() {
    let list =
        std::env::var("REEF_JS_MEASURE").unwrap_or_else(|_| guest("js_demo").display().to_string());
    for path in list.split(',').filter(|p| !p.is_empty()) {
        let wasm = std::fs::read(path).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let first = {
            let node = HostProcess::start(dir.path(), &["--object-store-memory", "256MiB"]);
            let cluster = node.connect().await;
            let t = Instant::now();
            cluster.register(wasm.clone()).await.unwrap();
            t.elapsed()
        };
        let node = HostProcess::start(dir.path(), &["--object-store-memory", "256MiB"]);
        let cluster = node.connect().await;
        let t = Instant::now();
        let m = cluster.register(wasm.clone()).await.unwrap();
        let cached = t.elapsed();
        let mut noop = Vec::new();
        for i in 0..220 {
            let t = Instant::now();
            let r = cluster.task(&m, "noop").submit().unwrap();
            cluster.get_bytes(&r).await.unwrap();
            if i >= 20 {
                noop.push(t.elapsed());
            }
        }
        noop.sort();
        let xs: Vec<f64> = (0..8_000_000u64).map(|i| i as f64).collect();
        let data = cluster.put_f64s(&xs).await.unwrap();
        let sum = |end: u64| {
            let (cluster, m, data) = (&cluster, &m, &data);
            async move {
                let mut times = Vec::new();
                for _ in 0..5 {
                    let t = Instant::now();
                    let r = cluster
                        .task(m, "sum_slice")
                        .arg(data)
                        .arg(0u64)
                        .arg(end)
                        .submit()
                        .unwrap();
                    let s: f64 = cluster.get(&r).await.unwrap();
                    times.push(t.elapsed());
                    assert_eq!(s, (0..end).map(|i| i as f64).sum::<f64>());
                }
                times.sort();
                times[2]
            }
        };
        let whole = sum(8_000_000).await;
        let empty = sum(0).await;
        println!(
            "{path}: {} bytes; registration first {first:?}, cached {cached:?}; noop round trip median {:?} (p90 {:?}); sum_slice over 64 MiB median {whole:?}, empty range (read only) {empty:?}",
            wasm.len(),
            noop[noop.len() / 2],
            noop[noop.len() * 9 / 10],
        );
    }
}
