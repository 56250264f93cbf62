//! The Python guest SDK (guest-sdk/python, componentize-py): the seed demo, plain
//! tasks, bad arguments, a raised exception (text and traceback reach the driver,
//! the node survives), the pipeline's `tokenize`, and the compiled-module cache.
//!
//! Modules: target/guests/python_demo.wasm and pipeline_python.wasm, built by
//! guest-sdk/python/build-examples.sh (scripts/build-guests.sh runs it).

use std::time::Instant;

use reef::{Arg, Cluster, ErrorCode, Module, ObjectRef};
use reef_tests::{add, assert_seed_demo, guest, node, task_error, HostProcess};

/// Runs `sum_slice(data, start, end)`; its result and the time from submission to result.
async fn timed_sum(
    cluster: &Cluster,
    m: &Module,
    data: &ObjectRef,
    start: u64,
    end: u64,
) -> (f64, std::time::Duration) {
    let t = Instant::now();
    let r = cluster
        .task(m, "sum_slice")
        .arg(data)
        .arg(start)
        .arg(end)
        .submit()
        .unwrap();
    let v: f64 = cluster.get(&r).await.unwrap();
    (v, t.elapsed())
}

/// Registration compiles the 19 MB component once; a restarted node on the same
/// data dir loads the compiled artifact instead (and runs the seed demo with it).
#[tokio::test]
async fn registration_is_cached_across_restarts_and_the_seed_demo_runs() {
    let dir = tempfile::tempdir().unwrap();
    let module = guest("python_demo");
    let size = std::fs::metadata(&module).unwrap().len();

    let first = {
        let node = HostProcess::start(dir.path(), &[]);
        let cluster = node.connect().await;
        let t = Instant::now();
        let m = cluster.register_file(&module).await.unwrap();
        let first = t.elapsed();
        assert!(!m.cached, "a fresh data dir cannot hold a compiled module");
        let t = Instant::now();
        let again = cluster.register_file(&module).await.unwrap();
        eprintln!(
            "python_demo.wasm: {size} bytes; first registration {first:?}; again on the same node {:?}",
            t.elapsed()
        );
        assert_eq!(again.hash, m.hash);
        first
    };

    let node = HostProcess::start(dir.path(), &[]);
    let cluster = node.connect().await;
    let t = Instant::now();
    let m = cluster.register_file(&module).await.unwrap();
    let cached = t.elapsed();
    eprintln!("python_demo.wasm: registration after a restart (cached) {cached:?}");
    assert!(m.cached, "the restarted node compiled the module again");
    assert!(
        cached < first,
        "cached registration ({cached:?}) is not faster than the first ({first:?})"
    );

    let t = Instant::now();
    assert_seed_demo(&cluster, &module).await;
    eprintln!("python seed demo: {:?}", t.elapsed());

    // Figures for the README (printed with --nocapture; only correctness is asserted).
    let t = Instant::now();
    for _ in 0..20 {
        let r = cluster.task(&m, "noop").submit().unwrap();
        assert_eq!(&cluster.get_bytes(&r).await.unwrap()[..], &[0xc0]);
    }
    eprintln!("python noop round trip: {:?}", t.elapsed() / 20);
    let xs: Vec<f64> = (0..8_388_608u64).map(|i| (i % 1000) as f64).collect();
    let data = cluster.put_f64s(&xs).await.unwrap();
    let (v, empty) = timed_sum(&cluster, &m, &data, 0, 0).await;
    assert_eq!(v, 0.0);
    let (v, whole) = timed_sum(&cluster, &m, &data, 0, xs.len() as u64).await;
    assert_eq!(v, xs.iter().sum::<f64>());
    eprintln!(
        "python sum_slice over a 64 MiB object: whole {whole:?}; empty range (the copy alone) {empty:?}"
    );
}

/// One node for the demo module's checks: each registration of a 19 MB Python
/// component compiles it again (15 s of CPU).
#[tokio::test]
async fn demo_tasks_bad_arguments_and_exceptions() {
    let cluster = node().await;
    let m = cluster.register_file(guest("python_demo")).await.unwrap();
    describe_echo_add_noop_and_bad_arguments(&cluster, &m).await;
    a_raised_exception_reaches_the_driver_with_its_traceback(&cluster, &m).await;
}

async fn describe_echo_add_noop_and_bad_arguments(cluster: &Cluster, m: &Module) {
    assert_eq!(m.sdk, "reef-guest-python/0.1.0");
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

    // add: floats, and integers where floats are asked for.
    assert_eq!(add(cluster, m, 20.0, 22.0).await, 42.0);
    let r = cluster
        .task(m, "add")
        .arg(2u64)
        .arg(-5i64)
        .submit()
        .unwrap();
    assert_eq!(cluster.get::<f64>(&r).await.unwrap(), -3.0);
    // The result is a MessagePack float64.
    let bytes = cluster.get_bytes(&r).await.unwrap();
    assert_eq!(&bytes[..], &[0xcb, 0xc0, 0x08, 0, 0, 0, 0, 0, 0]);

    // noop -> nil.
    let r = cluster.task(m, "noop").submit().unwrap();
    assert_eq!(&cluster.get_bytes(&r).await.unwrap()[..], &[0xc0]);

    // echo: raw bytes back, inline (not MessagePack) and as an arena object.
    let raw = vec![0xc1u8, 0, 255, 7, b'\n'];
    let r = cluster
        .task(m, "echo")
        .arg(Arg::bytes(raw.clone()))
        .submit()
        .unwrap();
    assert_eq!(&cluster.get_bytes(&r).await.unwrap()[..], &raw[..]);
    let big: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let obj = cluster.put_bytes(&big).await.unwrap();
    let r = cluster.task(m, "echo").arg(&obj).submit().unwrap();
    assert_eq!(&cluster.get_bytes(&r).await.unwrap()[..], &big[..]);

    // The actor: creation arguments and the running total.
    let acc = cluster
        .actor(m, "Accumulator")
        .arg(1.5)
        .create()
        .await
        .unwrap();
    let r = acc.call("add").arg(2u64).submit().unwrap();
    assert_eq!(cluster.get::<f64>(&r).await.unwrap(), 3.5);
    let r = acc.call("total").submit().unwrap();
    assert_eq!(cluster.get::<f64>(&r).await.unwrap(), 3.5);
    // A bad argument fails the call, not the actor.
    let err = task_error(cluster, acc.call("add").arg("x").submit().unwrap()).await;
    assert_eq!(err.code, ErrorCode::BadArgument, "{err}");
    let err = task_error(cluster, acc.call("nope").submit().unwrap()).await;
    assert!(
        matches!(err.code, ErrorCode::UnknownFunction),
        "unknown method: {err}"
    );
    let r = acc.call("total").submit().unwrap();
    assert_eq!(cluster.get::<f64>(&r).await.unwrap(), 3.5);

    // Bad arguments: BAD_ARGUMENT naming the argument.
    let err = task_error(
        cluster,
        cluster.task(m, "add").arg("x").arg(1.0).submit().unwrap(),
    )
    .await;
    assert_eq!(err.code, ErrorCode::BadArgument, "{err}");
    assert!(
        err.message
            .contains("argument 0 (a): expected a number, got str"),
        "{err}"
    );
    let err = task_error(cluster, cluster.task(m, "add").arg(1.0).submit().unwrap()).await;
    assert_eq!(err.code, ErrorCode::BadArgument, "{err}");
    assert!(err.message.contains("expected 2 arguments"), "{err}");
    let err = task_error(
        cluster,
        cluster
            .task(m, "add")
            .arg(Arg::bytes(vec![0xc1]))
            .arg(1.0)
            .submit()
            .unwrap(),
    )
    .await;
    assert_eq!(err.code, ErrorCode::BadArgument, "{err}");
    assert!(err.message.contains("not MessagePack"), "{err}");
    // sum_slice needs an object.
    let err = task_error(
        cluster,
        cluster
            .task(m, "sum_slice")
            .arg(1.0)
            .arg(0u64)
            .arg(1u64)
            .submit()
            .unwrap(),
    )
    .await;
    assert_eq!(err.code, ErrorCode::BadArgument, "{err}");
    assert!(err.message.contains("expected an object"), "{err}");
    assert_eq!(add(cluster, m, 1.0, 2.0).await, 3.0);
}

async fn a_raised_exception_reaches_the_driver_with_its_traceback(cluster: &Cluster, m: &Module) {
    let kept = cluster.put_bytes(&[9u8; 200_000]).await.unwrap();

    let r = cluster.task(m, "fail").arg("boom 42").submit().unwrap();
    let err = task_error(cluster, r).await;
    assert_eq!(err.code, ErrorCode::GuestError, "{err}");
    assert!(
        err.message.starts_with("ValueError: boom 42"),
        "{}",
        err.message
    );
    assert!(
        err.message.contains("Traceback (most recent call last):"),
        "{}",
        err.message
    );
    // The traceback names the raising function and its file.
    assert!(err.message.contains("app.py"), "{}", err.message);
    assert!(err.message.contains("in fail"), "{}", err.message);
    // It starts in the user's code, not in the SDK's dispatch.
    assert!(!err.message.contains("reef/__init__.py"), "{}", err.message);

    // The node survives and keeps serving (and keeps its objects).
    for i in 0..3 {
        assert_eq!(add(cluster, m, i as f64, 1.0).await, i as f64 + 1.0);
    }
    assert_eq!(
        &cluster.get_bytes(&kept).await.unwrap()[..],
        &[9u8; 200_000][..]
    );
    let err = task_error(
        cluster,
        cluster.task(m, "fail").arg("again").submit().unwrap(),
    )
    .await;
    assert!(err.message.starts_with("ValueError: again"), "{err}");
    assert_eq!(add(cluster, m, 40.0, 2.0).await, 42.0);
}

#[tokio::test]
async fn tokenize_splits_lowercased_ascii_words() {
    let cluster = node().await;
    let m = cluster
        .register_file(guest("pipeline_python"))
        .await
        .unwrap();
    assert_eq!(m.tasks, vec!["tokenize".to_string()]);
    let text = "The quick brown Fox -- the LAZY dog's 2nd den; x42y ÉTÉ\nend.";
    let expected: &[u8] = b"the\nquick\nbrown\nfox\nthe\nlazy\ndog\ns\nnd\nden\nx\ny\nt\nend";

    // As a MessagePack str, inline.
    let r = cluster.task(&m, "tokenize").arg(text).submit().unwrap();
    assert_eq!(&cluster.get_bytes(&r).await.unwrap()[..], expected);
    // As raw UTF-8 bytes.
    let r = cluster
        .task(&m, "tokenize")
        .arg(Arg::bytes(text.as_bytes().to_vec()))
        .submit()
        .unwrap();
    assert_eq!(&cluster.get_bytes(&r).await.unwrap()[..], expected);
    // As an object holding a MessagePack str.
    let obj = cluster.put(text).await.unwrap();
    let r = cluster.task(&m, "tokenize").arg(&obj).submit().unwrap();
    assert_eq!(&cluster.get_bytes(&r).await.unwrap()[..], expected);
    // No words: an empty result.
    let r = cluster
        .task(&m, "tokenize")
        .arg("42 -- !")
        .submit()
        .unwrap();
    assert!(cluster.get_bytes(&r).await.unwrap().is_empty());
    // A large text through an arena object.
    let big = "Alpha beta, GAMMA! ".repeat(20_000);
    let obj = cluster.put(big.as_str()).await.unwrap();
    let r = cluster.task(&m, "tokenize").arg(&obj).submit().unwrap();
    let out = cluster.get_bytes(&r).await.unwrap();
    let words: Vec<&[u8]> = out.split(|&b| b == b'\n').collect();
    assert_eq!(words.len(), 60_000);
    assert_eq!(&words[..3], &[&b"alpha"[..], b"beta", b"gamma"]);
}

#[tokio::test]
async fn nested_tasks_objects_actors_and_logs_from_inside_a_task() {
    let cluster = node().await;
    let m = cluster.register_file(guest("python_nested")).await.unwrap();

    // Registered without grants: the stubbed filesystem has no directory and
    // sockets are refused, as Python errors (not traps).
    let r = cluster.task(&m, "sandbox_probe").submit().unwrap();
    assert_eq!(
        cluster.get::<String>(&r).await.unwrap(),
        "file=FileNotFoundError dir=FileNotFoundError scratch=FileNotFoundError \
         socket=PermissionError lookup=PermissionError"
    );

    // Nested submit: (n-1) n (2n-1) / 6 for n = 6.
    let r = cluster.task(&m, "fan_out").arg(6u64).submit().unwrap();
    assert_eq!(cluster.get::<f64>(&r).await.unwrap(), 55.0);

    // An object passed on by reference to nested tasks.
    let xs: Vec<f64> = (0..100_000u64).map(|i| i as f64).collect();
    let data = cluster.put_f64s(&xs).await.unwrap();
    let r = cluster
        .task(&m, "split_sum")
        .arg(&data)
        .arg(3u64)
        .submit()
        .unwrap();
    assert_eq!(
        cluster.get::<f64>(&r).await.unwrap(),
        xs.iter().sum::<f64>()
    );

    // A task returns an object it put: raw little-endian f64s.
    let r = cluster.task(&m, "make_f64s").arg(5u64).submit().unwrap();
    let bytes = cluster.get_bytes(&r).await.unwrap();
    let got: Vec<f64> = bytes
        .chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(got, vec![0.0, 1.0, 2.0, 3.0, 4.0]);

    // Structured values: a list in, a map out.
    let r = cluster
        .task(&m, "stats")
        .arg(Arg::value(&vec![3i64, -1, 10]).unwrap())
        .submit()
        .unwrap();
    // {"n": 3, "sum": 12.0, "minmax": [-1, 10], "ok": true}, shortest forms, f64 as float64.
    let mut expected = vec![0x84, 0xa1, b'n', 0x03, 0xa3, b's', b'u', b'm', 0xcb];
    expected.extend_from_slice(&12.0f64.to_be_bytes());
    expected.extend_from_slice(&[0xa6, b'm', b'i', b'n', b'm', b'a', b'x', 0x92, 0xff, 0x0a]);
    expected.extend_from_slice(&[0xa2, b'o', b'k', 0xc3]);
    assert_eq!(&cluster.get_bytes(&r).await.unwrap()[..], &expected[..]);

    // Actors from inside a task: create (named), lookup, call.
    let r = cluster
        .task(&m, "use_actor")
        .arg("py-counter")
        .arg(Arg::value(&vec![1u64, 2, 3]).unwrap())
        .submit()
        .unwrap();
    assert_eq!(
        cluster.get::<Vec<u64>>(&r).await.unwrap(),
        vec![101, 103, 106, 106]
    );
    // The driver finds the same actor by name.
    let counter = cluster.get_actor("py-counter").await.unwrap();
    let r = counter.call("total").submit().unwrap();
    assert_eq!(cluster.get::<u64>(&r).await.unwrap(), 106);
    // An exception in a method fails that call only.
    let err = task_error(
        &cluster,
        counter.call("explode").arg("kaboom").submit().unwrap(),
    )
    .await;
    assert_eq!(err.code, ErrorCode::GuestError, "{err}");
    assert!(err.message.starts_with("RuntimeError: kaboom"), "{err}");
    assert!(err.message.contains("in explode"), "{err}");
    let r = counter.call("add").arg(4u64).submit().unwrap();
    assert_eq!(cluster.get::<u64>(&r).await.unwrap(), 110);

    // print, logging and reef.warn reach the task's logs.
    let r = cluster.task(&m, "chatty").arg("hi there").submit().unwrap();
    cluster.get_bytes(&r).await.unwrap();
    let logs = cluster.logs(&r).await.unwrap();
    assert!(logs.stdout.contains("print: hi there"), "{logs:?}");
    let log = logs.log.join("\n");
    assert!(log.contains("logging: hi there"), "{logs:?}");
    assert!(log.contains("reef.warn: hi there"), "{logs:?}");
}
