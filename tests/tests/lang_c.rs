//! What only the C guest SDK (guest-sdk/c) has: traps from C code (the node survives
//! them), C++ modules, nested calls from C, its MessagePack reader and writer, and the
//! C piece of the cross-language pipeline. Modules: guest-sdk/c/build-examples.sh.
//! What every guest language does alike (the seed demo, the demo's tasks, bad
//! arguments, failures, the actor, the module cache) is in conformance.rs.

use std::collections::BTreeMap;

use reef::{Arg, ErrorCode};
use reef_testkit::{guest, node};
use reef_tests::{assert_seed_demo, still_serving, task_error};

#[tokio::test]
async fn null_and_out_of_bounds_writes_trap_and_the_node_survives() {
    let cluster = node().await;
    let demo = cluster.register_file(guest("c_demo")).await.unwrap();
    let bad = cluster.register_file(guest("c_bad")).await.unwrap();
    let bytes: Vec<u8> = (0..300_000u32).map(|i| (i % 199) as u8 + 1).collect();
    let kept = cluster.put_bytes(&bytes).await.unwrap();
    let cases: &[(&str, ErrorCode, &str)] = &[
        (
            "null_write",
            ErrorCode::GuestPanic,
            "store to null pointer of type 'int' (at bad.c:",
        ),
        (
            "null_member_write",
            ErrorCode::GuestPanic,
            "member access within null pointer of type 'struct point'",
        ),
        (
            "null_memset",
            ErrorCode::GuestPanic,
            "a write through a NULL pointer",
        ),
        (
            "oob_write",
            ErrorCode::GuestTrap,
            "out of bounds memory access",
        ),
        (
            "assert_false",
            ErrorCode::GuestPanic,
            "assertion failed: 1 + 1 == two + 1",
        ),
    ];
    for &(task, code, text) in cases {
        let e = task_error(&cluster, cluster.task(&bad, task).submit().unwrap()).await;
        assert_eq!(e.code, code, "{task}: {e}");
        assert!(e.message.contains(text), "{task}: {e}");
        assert!(!e.backtrace.is_empty(), "{task}: no backtrace");
        still_serving(&cluster, &demo, Some((&kept, &bytes))).await;
    }
    // What the task printed before it trapped is kept.
    let r = cluster.task(&bad, "null_write").submit().unwrap();
    task_error(&cluster, r.clone()).await;
    let logs = cluster.logs(&r).await.unwrap();
    assert!(logs.stdout.contains("writing through"), "{logs:?}");
    let e = task_error(
        &cluster,
        cluster.task(&bad, "panic").arg("boom 42").submit().unwrap(),
    )
    .await;
    assert_eq!(
        (e.code, e.message.as_str()),
        (ErrorCode::GuestPanic, "boom 42")
    );
    // A C stack overflow runs off address 0 (the stack comes first) and traps.
    let e = task_error(&cluster, cluster.task(&bad, "recurse").submit().unwrap()).await;
    assert_eq!(e.code, ErrorCode::StackOverflow, "{e}");
    // Many traps in a row: every instance is torn down cleanly.
    let refs: Vec<_> = (0..20)
        .map(|i| {
            let task = ["null_write", "oob_write"][i % 2];
            cluster.task(&bad, task).submit().unwrap()
        })
        .collect();
    for r in refs {
        task_error(&cluster, r).await;
    }
    still_serving(&cluster, &demo, Some((&kept, &bytes))).await;
    assert_seed_demo(&cluster, &guest("c_demo")).await;
}

#[tokio::test]
async fn a_module_written_in_cxx() {
    let cluster = node().await;
    let m = cluster.register_file(guest("c_cxx")).await.unwrap();
    assert_eq!(m.tasks, ["greet", "sorted"]);
    let r = cluster.task(&m, "greet").arg("Reef").submit().unwrap();
    assert_eq!(cluster.get::<String>(&r).await.unwrap(), "hello, Reef");
    let xs: Vec<i64> = vec![5, -3, 1 << 40, 0, -(1 << 33), 7];
    let r = cluster
        .task(&m, "sorted")
        .arg(Arg::value(&xs).unwrap())
        .submit()
        .unwrap();
    let mut expected = xs.clone();
    expected.sort();
    assert_eq!(cluster.get::<Vec<i64>>(&r).await.unwrap(), expected);
    let e = task_error(
        &cluster,
        cluster.task(&m, "sorted").arg("no").submit().unwrap(),
    )
    .await;
    assert_eq!(e.code, ErrorCode::BadArgument, "{e}");
}

/// What `count_tokens` must return: Python's tokenizer rule, counted.
fn expected_counts(text: &str) -> BTreeMap<String, u64> {
    let lower = text.to_ascii_lowercase();
    let mut counts = BTreeMap::new();
    for word in lower.split(|c: char| !c.is_ascii_lowercase()) {
        if !word.is_empty() {
            *counts.entry(word.to_string()).or_insert(0) += 1;
        }
    }
    counts
}

#[tokio::test]
async fn pipeline_count_tokens() {
    let cluster = node().await;
    let m = cluster.register_file(guest("pipeline_c")).await.unwrap();
    let text = "The quick brown fox jumps over the lazy dog. THE DOG sleeps; the fox runs!";
    // As Python's tokenize returns them: words joined with "\n", in text order.
    let in_order: Vec<String> = text
        .to_ascii_lowercase()
        .split(|c: char| !c.is_ascii_lowercase())
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect();
    assert_eq!(in_order.len(), 15);
    let obj = cluster
        .put_bytes(in_order.join("\n").as_bytes())
        .await
        .unwrap();
    let r = cluster.task(&m, "count_tokens").arg(&obj).submit().unwrap();
    let counts: BTreeMap<String, u64> = cluster.get(&r).await.unwrap();
    let expected: BTreeMap<String, u64> = [
        ("brown", 1),
        ("dog", 2),
        ("fox", 2),
        ("jumps", 1),
        ("lazy", 1),
        ("over", 1),
        ("quick", 1),
        ("runs", 1),
        ("sleeps", 1),
        ("the", 4),
    ]
    .into_iter()
    .map(|(w, n)| (w.to_string(), n))
    .collect();
    assert_eq!(counts, expected);
    assert_eq!(counts, expected_counts(text));
    let logs = cluster.logs(&r).await.unwrap();
    assert!(
        logs.log.iter().any(|l| l.contains("10 distinct words")),
        "{logs:?}"
    );

    // A larger input through a multi-page view; an empty one gives an empty map.
    let words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta"];
    let big: Vec<&str> = (0..200_000usize)
        .map(|i| words[(i * i + 3 * i) % words.len()])
        .collect();
    let obj = cluster.put_bytes(big.join("\n").as_bytes()).await.unwrap();
    let r = cluster.task(&m, "count_tokens").arg(&obj).submit().unwrap();
    let counts: BTreeMap<String, u64> = cluster.get(&r).await.unwrap();
    assert_eq!(counts, expected_counts(&big.join(" ")));
    assert_eq!(counts.values().sum::<u64>(), 200_000);
    let empty = cluster.put_bytes(b"").await.unwrap();
    let r = cluster
        .task(&m, "count_tokens")
        .arg(&empty)
        .submit()
        .unwrap();
    assert!(cluster
        .get::<BTreeMap<String, u64>>(&r)
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn nested_calls_objects_views_and_logs_from_c() {
    let cluster = node().await;
    let m = cluster.register_file(guest("c_nested")).await.unwrap();
    let r = cluster
        .task(&m, "sum_of_squares")
        .arg(10u64)
        .submit()
        .unwrap();
    assert_eq!(cluster.get::<f64>(&r).await.unwrap(), 385.0);
    let n = 300_000u64; // 2.4 MB: a multi-page view of an object the guest stored
    let r = cluster.task(&m, "put_and_view").arg(n).submit().unwrap();
    assert_eq!(
        cluster.get::<f64>(&r).await.unwrap(),
        (n * (n - 1) / 2) as f64
    );
    let r = cluster
        .task(&m, "put_text")
        .arg("stored by C")
        .submit()
        .unwrap();
    assert_eq!(&cluster.get_bytes(&r).await.unwrap()[..], b"stored by C");
    let r = cluster
        .task(&m, "counter_roundtrip")
        .arg("c-counter")
        .submit()
        .unwrap();
    assert_eq!(cluster.get::<u64>(&r).await.unwrap(), 8);
    // The actor the task created is visible to the driver by name.
    let counter = cluster.get_actor("c-counter").await.unwrap();
    let r = counter.call("get").submit().unwrap();
    assert_eq!(cluster.get::<u64>(&r).await.unwrap(), 8);
    // A second actor under the same name is refused, with the host's error.
    let r = cluster
        .task(&m, "counter_roundtrip")
        .arg("c-counter")
        .submit()
        .unwrap();
    let e = task_error(&cluster, r).await;
    assert_eq!(e.code, ErrorCode::NameTaken, "{e}");

    let r = cluster.task(&m, "hello").arg("Reef").submit().unwrap();
    assert_eq!(&cluster.get_bytes(&r).await.unwrap()[..], &[0xc0]);
    let logs = cluster.logs(&r).await.unwrap();
    assert!(logs.stdout.contains("hello from C, Reef"), "{logs:?}");
    assert!(
        logs.log.iter().any(|l| l.contains("logged for Reef")),
        "{logs:?}"
    );
}

/// MessagePack in every format the C writer produces, shortest form (as the writer
/// writes it), so decoding and re-encoding must give the same bytes.
fn msgpack_sample() -> Vec<u8> {
    let mut b = vec![0xc0, 0xc3, 0xc2, 0x05, 0x7f, 0xcc, 200, 0xcd, 0xea, 0x60];
    b.extend([0xce, 0xee, 0x6b, 0x28, 0x00]); // 4e9
    b.push(0xcf);
    b.extend((1u64 << 63).to_be_bytes());
    b.extend([0xff, 0xe0, 0xd0, 0x9c]); // -1, -32, -100
    b.push(0xd1);
    b.extend((-30000i16).to_be_bytes());
    b.push(0xd2);
    b.extend((-2_000_000_000i32).to_be_bytes());
    b.push(0xd3);
    b.extend((-(1i64 << 40)).to_be_bytes());
    b.push(0xcb);
    b.extend((-2.25f64).to_be_bytes());
    b.extend([0xa2, b'h', b'i']);
    b.extend([0xd9, 40]);
    b.extend([b's'; 40]);
    b.push(0xda);
    b.extend(300u16.to_be_bytes());
    b.extend([b'm'; 300]);
    b.push(0xdb);
    b.extend(70_000u32.to_be_bytes());
    b.extend([b'l'; 70_000]);
    b.extend([0xc4, 3, 1, 2, 3]);
    b.push(0xc5);
    b.extend(300u16.to_be_bytes());
    b.extend([7; 300]);
    b.extend([0x92, 0x01, 0xa1, b'x']);
    b.push(0xdc);
    b.extend(20u16.to_be_bytes());
    b.extend(0..20u8);
    b.extend([0x81, 0xa1, b'k', 0x90]);
    b.push(0xde);
    b.extend(16u16.to_be_bytes());
    for i in 0..16u8 {
        b.extend([0xa1, b'a' + i, i]);
    }
    b
}

#[tokio::test]
async fn msgpack_reader_and_writer_round_trip() {
    let cluster = node().await;
    let m = cluster.register_file(guest("c_nested")).await.unwrap();
    let sample = msgpack_sample();
    let r = cluster
        .task(&m, "mp_roundtrip")
        .arg(Arg::bytes(sample.clone()))
        .submit()
        .unwrap();
    assert_eq!(&cluster.get_bytes(&r).await.unwrap()[..], &sample[..]);
    // As an object argument too; a float32 comes back as a float64.
    let mut input = sample.clone();
    input.push(0xca);
    input.extend(1.5f32.to_be_bytes());
    let mut expected = sample;
    expected.push(0xcb);
    expected.extend(1.5f64.to_be_bytes());
    let obj = cluster.put_bytes(&input).await.unwrap();
    let r = cluster.task(&m, "mp_roundtrip").arg(&obj).submit().unwrap();
    assert_eq!(&cluster.get_bytes(&r).await.unwrap()[..], &expected[..]);
    // Truncated and invalid input are bad arguments.
    for bad in [vec![0xcd, 0x01], vec![0xa5, b'a'], vec![0xc1]] {
        let r = cluster
            .task(&m, "mp_roundtrip")
            .arg(Arg::bytes(bad.clone()))
            .submit()
            .unwrap();
        let e = task_error(&cluster, r).await;
        assert_eq!(e.code, ErrorCode::BadArgument, "{bad:x?}: {e}");
    }
}

#[tokio::test]
async fn the_readme_example_runs_the_seed_demo() {
    let readme = include_str!("../../guest-sdk/c/README.md");
    let example = include_str!("../../guest-sdk/c/examples/minimal/guest.c");
    assert!(
        readme.contains(example),
        "guest-sdk/c/README.md must show examples/minimal/guest.c verbatim"
    );
    let cluster = node().await;
    assert_seed_demo(&cluster, &guest("c_minimal")).await;
}

#[tokio::test]
async fn views_are_private_and_can_outlive_a_call_in_an_actor() {
    let cluster = node().await;
    let m = cluster.register_file(guest("c_nested")).await.unwrap();
    let bytes: Vec<u8> = (0..(3 << 20) + 123u32).map(|i| (i % 251) as u8).collect();
    let obj = cluster.put_bytes(&bytes).await.unwrap();
    // The C guest writes all over its view and sees its writes...
    let r = cluster.task(&m, "scribble").arg(&obj).submit().unwrap();
    assert_eq!(cluster.get::<u64>(&r).await.unwrap(), 0xEE);
    // ...while the stored object is unchanged.
    assert_eq!(&cluster.get_bytes(&obj).await.unwrap()[..], &bytes[..]);
    let expected: u64 = bytes.iter().map(|&b| b as u64).sum();
    // An actor maps the object once and reads it in later calls.
    let holder = cluster
        .actor(&m, "Holder")
        .arg(&obj)
        .create()
        .await
        .unwrap();
    for _ in 0..3 {
        let r = holder.call("byte_sum").submit().unwrap();
        assert_eq!(cluster.get::<u64>(&r).await.unwrap(), expected);
    }
    let r = holder.call("release").submit().unwrap();
    cluster.get_bytes(&r).await.unwrap();
    let e = task_error(&cluster, holder.call("byte_sum").submit().unwrap()).await;
    assert_eq!(e.code, ErrorCode::GuestError, "{e}");
    assert!(e.message.contains("released"), "{e}");
    // An inline argument where the actor needs an object: the constructor's error
    // reaches the driver (at creation, or at the first call if creation is lazy).
    let e = match cluster.actor(&m, "Holder").arg(1u64).create().await {
        Err(e) => e,
        Ok(h) => task_error(&cluster, h.call("byte_sum").submit().unwrap()).await,
    };
    assert!(
        matches!(e.code, ErrorCode::BadArgument | ErrorCode::ActorDead),
        "{e}"
    );
    assert!(e.message.contains("argument 0: expected an object"), "{e}");
}
