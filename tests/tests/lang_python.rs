//! What only the Python guest SDK (guest-sdk/python, componentize-py) has: the
//! pipeline's `tokenize`, and the SDK used from inside a task (nested tasks, objects,
//! actors, logs, the sandbox).
//! What every guest language does alike (the seed demo, the demo's tasks, bad
//! arguments, failures, the actor, the module cache) is in conformance.rs.
//!
//! Modules: target/guests/python_nested.wasm and pipeline_python.wasm, built by
//! guest-sdk/python/build-examples.sh (scripts/build-guests.sh runs it).

use reef::{Arg, ErrorCode};
use reef_testkit::{guest, node};
use reef_tests::task_error;

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

/// A slot keeps the pages its Python instance wrote (`KEEP_RESIDENT`, gaps
/// filled by `merge_runs`) and its reset copies the image back over them: a
/// fresh instance must still never see what an earlier task left in the heap,
/// while an instance kept on purpose (`max_calls=0`) does.
#[tokio::test]
async fn a_fresh_python_instance_never_sees_an_earlier_tasks_heap() {
    let cluster = node().await;
    let m = cluster.register_file(guest("python_nested")).await.unwrap();
    // Enough tasks that slots are reused and reset many times, merged or not.
    for i in 0..40 {
        let r = cluster.task(&m, "remember").arg(2000).submit().unwrap();
        let seen: Vec<u64> = cluster.get(&r).await.unwrap();
        assert_eq!(seen, vec![1, 2000], "fresh task {i} saw an earlier heap");
    }
    // The control: a kept instance does accumulate, so the task can tell.
    let mut last = vec![];
    for _ in 0..3 {
        let r = cluster
            .task(&m, "remember")
            .arg(2000)
            .max_calls(0)
            .submit()
            .unwrap();
        last = cluster.get::<Vec<u64>>(&r).await.unwrap();
    }
    assert_eq!(last, vec![3, 6000]);
    let r = cluster.task(&m, "remember").arg(10).submit().unwrap();
    assert_eq!(cluster.get::<Vec<u64>>(&r).await.unwrap(), vec![1, 10]);
}
