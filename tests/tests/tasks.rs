//! Tasks, DAGs, actors and the driver operations, against a real node.

use std::time::Duration;

use reef::ErrorCode;
use reef_testkit::{guest, node};

#[tokio::test]
async fn seed_demo_partial_sums_and_accumulator() {
    let cluster = node().await;
    reef_tests::assert_seed_demo(&cluster, &guest("demo")).await;
}

#[tokio::test]
async fn dag_results_feed_further_tasks() {
    let cluster = node().await;
    let m = cluster.register_file(guest("dag")).await.unwrap();
    let n = 1000u64;
    let xs = cluster.task(&m, "make_range").arg(n).submit().unwrap();
    let squares = cluster.task(&m, "square_sum").arg(&xs).submit().unwrap();
    let sum = cluster.task(&m, "sum").arg(&xs).submit().unwrap();
    let doubled = cluster
        .task(&m, "scale")
        .arg(&xs)
        .arg(2.0)
        .submit()
        .unwrap();
    let doubled_sum = cluster.task(&m, "sum").arg(&doubled).submit().unwrap();
    let combined = cluster
        .task(&m, "combine")
        .arg(&squares)
        .arg(&sum)
        .submit()
        .unwrap();
    let total = cluster
        .task(&m, "total")
        .arg(&combined)
        .arg(&doubled_sum)
        .submit()
        .unwrap();
    let nf = n as f64;
    let expected = (nf - 1.0) * nf * (2.0 * nf - 1.0) / 6.0 + 3.0 * (nf - 1.0) * nf / 2.0;
    assert_eq!(cluster.get::<f64>(&total).await.unwrap(), expected);
}

#[tokio::test]
async fn guests_submit_tasks_and_call_actors() {
    let cluster = node().await;
    let m = cluster.register_file(guest("nested")).await.unwrap();
    // More nested tasks than CPUs: the parent gives its CPU back while it waits.
    let r = cluster.task(&m, "fan_out").arg(20u64).submit().unwrap();
    assert_eq!(
        cluster.get::<f64>(&r).await.unwrap(),
        (19.0 * 20.0 * 39.0) / 6.0
    );
    let r = cluster.task(&m, "use_actor").arg(10u64).submit().unwrap();
    assert_eq!(cluster.get::<f64>(&r).await.unwrap(), 55.0);
}

#[tokio::test]
async fn named_actors_are_found_and_killed() {
    let cluster = node().await;
    let m = cluster.register_file(guest("demo")).await.unwrap();
    let a = cluster
        .actor(&m, "Accumulator")
        .arg(1.0)
        .name("acc")
        .create()
        .await
        .unwrap();
    let found = cluster.get_actor("acc").await.unwrap();
    assert_eq!(found.id(), a.id());
    assert_eq!(
        cluster
            .get::<f64>(&found.call("add").arg(2.0).submit().unwrap())
            .await
            .unwrap(),
        3.0
    );
    let dup = cluster.actor(&m, "Accumulator").name("acc").create().await;
    assert_eq!(dup.err().unwrap().code, ErrorCode::NameTaken);
    a.kill().await.unwrap();
    let after = cluster.get::<f64>(&a.call("total").submit().unwrap()).await;
    let err = after.unwrap_err();
    assert!(
        matches!(err.code, ErrorCode::ActorDead | ErrorCode::UnknownActor),
        "{err}"
    );
    assert_eq!(
        cluster.get_actor("acc").await.err().unwrap().code,
        ErrorCode::UnknownActor
    );
}

#[tokio::test]
async fn actor_calls_run_in_submission_order() {
    let cluster = node().await;
    let m = cluster.register_file(guest("demo")).await.unwrap();
    let acc = cluster.actor(&m, "Accumulator").create().await.unwrap();
    let refs: Vec<_> = (1..=200)
        .map(|i| acc.call("add").arg(i as f64).submit().unwrap())
        .collect();
    let totals: Vec<f64> = cluster.get_many(&refs).await.unwrap();
    let expected: Vec<f64> = (1..=200)
        .scan(0.0, |s, i| {
            *s += i as f64;
            Some(*s)
        })
        .collect();
    assert_eq!(totals, expected);
}

#[tokio::test]
async fn wait_returns_ready_refs_and_times_out() {
    let cluster = node().await;
    let m = cluster.register_file(guest("demo")).await.unwrap();
    let bad = cluster.register_file(guest("bad")).await.unwrap();
    let fast = cluster.task(&m, "add").arg(1.0).arg(2.0).submit().unwrap();
    let slow = cluster
        .task(&bad, "loop_forever")
        .cpu_time(Duration::from_secs(5))
        .submit()
        .unwrap();
    let (ready, not_ready) = cluster
        .wait(
            &[slow.clone(), fast.clone()],
            1,
            Some(Duration::from_secs(3)),
        )
        .await
        .unwrap();
    assert_eq!(
        ready.iter().map(|r| r.id()).collect::<Vec<_>>(),
        vec![fast.id()]
    );
    assert_eq!(
        not_ready.iter().map(|r| r.id()).collect::<Vec<_>>(),
        vec![slow.id()]
    );
    let (ready, _) = cluster
        .wait(
            std::slice::from_ref(&slow),
            1,
            Some(Duration::from_millis(100)),
        )
        .await
        .unwrap();
    assert!(ready.is_empty());
    let err = cluster
        .get_bytes_timeout(&slow, Duration::from_millis(100))
        .await
        .err()
        .unwrap();
    assert_eq!(err.code, ErrorCode::Timeout);
    cluster.cancel(&slow).unwrap();
}

#[tokio::test]
async fn cancel_stops_a_running_and_a_queued_task() {
    let cluster = node_with_cpus(1).await;
    let bad = cluster.register_file(guest("bad")).await.unwrap();
    let m = cluster.register_file(guest("demo")).await.unwrap();
    let running = cluster.task(&bad, "loop_forever").submit().unwrap();
    let queued = cluster.task(&m, "noop").submit().unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let states: Vec<String> = cluster
        .status()
        .await
        .unwrap()
        .tasks
        .into_iter()
        .map(|t| t.state)
        .collect();
    assert_eq!(states, vec!["running", "waiting-for-resources"]);
    cluster.cancel(&queued).unwrap();
    cluster.cancel(&running).unwrap();
    let e1 = cluster.get_bytes(&running).await.err().unwrap();
    let e2 = cluster.get_bytes(&queued).await.err().unwrap();
    assert_eq!(e1.code, ErrorCode::Cancelled, "{e1}");
    assert_eq!(e2.code, ErrorCode::Cancelled, "{e2}");
    // The CPU came back: new work runs.
    let r = cluster.task(&m, "add").arg(2.0).arg(2.0).submit().unwrap();
    assert_eq!(cluster.get::<f64>(&r).await.unwrap(), 4.0);
}

/// A task waiting for its argument (one that never comes: the task making it
/// loops) is cancelled at once, not when the argument arrives.
#[tokio::test]
async fn cancel_stops_a_task_waiting_for_its_argument() {
    let cluster = node_with_cpus(2).await;
    let bad = cluster.register_file(guest("bad")).await.unwrap();
    let m = cluster.register_file(guest("demo")).await.unwrap();
    let never = cluster.task(&bad, "loop_forever").submit().unwrap();
    let waiting: Vec<_> = (0..20)
        .map(|_| {
            cluster
                .task(&m, "add")
                .arg(&never)
                .arg(1.0)
                .submit()
                .unwrap()
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    for r in &waiting {
        cluster.cancel(r).unwrap();
    }
    for r in &waiting {
        let e = tokio::time::timeout(Duration::from_secs(10), cluster.get_bytes(r))
            .await
            .expect("a cancelled task waiting for its argument ended")
            .err()
            .unwrap();
        assert_eq!(e.code, ErrorCode::Cancelled, "{e}");
    }
    cluster.cancel(&never).unwrap();
    // Both CPUs came back: new work runs.
    let r = cluster.task(&m, "add").arg(2.0).arg(2.0).submit().unwrap();
    assert_eq!(cluster.get::<f64>(&r).await.unwrap(), 4.0);
}

async fn node_with_cpus(n: u32) -> reef::Cluster {
    let n = n.to_string();
    reef_testkit::node_with(&["--num-cpus", &n]).await
}

#[tokio::test]
async fn logs_capture_stdout_stderr_and_log_lines() {
    let cluster = node().await;
    let bad = cluster.register_file(guest("bad")).await.unwrap();
    let r = cluster.task(&bad, "print").submit().unwrap();
    cluster.get_bytes(&r).await.unwrap();
    let logs = cluster.logs(&r).await.unwrap();
    assert!(logs.stdout.contains("hello stdout"), "{logs:?}");
    assert!(logs.stderr.contains("hello stderr"), "{logs:?}");
    assert!(!logs.log.is_empty(), "{logs:?}");
}

#[tokio::test]
async fn put_and_get_round_trip_small_and_large() {
    let cluster = node().await;
    let small = cluster.put(&("hello", 42u32)).await.unwrap();
    assert_eq!(
        cluster.get::<(String, u32)>(&small).await.unwrap(),
        ("hello".to_string(), 42)
    );
    let big: Vec<u8> = (0..10 << 20).map(|i: u32| (i % 251) as u8).collect();
    let r = cluster.put_bytes(&big).await.unwrap();
    let back = cluster.get_bytes(&r).await.unwrap();
    assert!(back.is_zero_copy());
    assert_eq!(&back[..], &big[..]);
    let m = cluster.register_file(guest("demo")).await.unwrap();
    let echoed = cluster
        .task(&m, "echo")
        .arg(&r)
        .memory_limit(64 << 20)
        .submit()
        .unwrap();
    assert_eq!(&cluster.get_bytes(&echoed).await.unwrap()[..], &big[..]);
}

#[tokio::test]
async fn custom_resources_gate_tasks() {
    let cluster = reef_testkit::node_with(&["--resource", "gpu=1"]).await;
    let m = cluster.register_file(guest("demo")).await.unwrap();
    let ok = cluster
        .task(&m, "add")
        .arg(1.0)
        .arg(1.0)
        .resource("gpu", 1.0)
        .submit()
        .unwrap();
    assert_eq!(cluster.get::<f64>(&ok).await.unwrap(), 2.0);
    let never = cluster
        .task(&m, "add")
        .arg(1.0)
        .arg(1.0)
        .resource("gpu", 2.0)
        .submit()
        .unwrap();
    let err = cluster.get_bytes(&never).await.err().unwrap();
    assert_eq!(err.code, ErrorCode::Infeasible, "{err}");
}

/// The Rust SDK's `f64s::sum` order: element `2k` of each block of 8 into
/// partial `k`, element `2k + 1` into `k + 4`, tail element `t` into `t`; then
/// `((p0+p4) + (p2+p6)) + ((p1+p5) + (p3+p7))`.
fn eight_way_sum(xs: &[f64]) -> f64 {
    let mut p = [0.0f64; 8];
    let blocks = xs.chunks_exact(8);
    let tail = blocks.remainder();
    for block in blocks {
        for k in 0..4 {
            p[k] += block[2 * k];
            p[k + 4] += block[2 * k + 1];
        }
    }
    for (k, x) in tail.iter().enumerate() {
        p[k] += x;
    }
    ((p[0] + p[4]) + (p[2] + p[6])) + ((p[1] + p[5]) + (p[3] + p[7]))
}

#[tokio::test]
async fn the_guest_simd_sum_adds_every_element_in_its_documented_order() {
    // Values whose sum depends on the order of the additions, so that a block
    // added twice, skipped or folded into the wrong partial changes the bits;
    // lengths and offsets around the SIMD loop's 16- and 8-element steps.
    let cluster = node().await;
    let m = cluster.register_file(guest("demo")).await.unwrap();
    let xs: Vec<f64> = (0..1000).map(|i| 1.0 / (i as f64 + 1.0) - 0.3).collect();
    let data = cluster.put_f64s(&xs).await.unwrap();
    for (start, end) in [
        (0, 0),
        (0, 7),
        (0, 8),
        (0, 15),
        (0, 16),
        (0, 17),
        (0, 24),
        (0, 31),
        (0, 32),
        (0, 40),
        (1, 26),
        (3, 516),
        (0, 1000),
    ] {
        let r = cluster
            .task(&m, "sum_slice")
            .arg(&data)
            .arg(start as u64)
            .arg(end as u64)
            .submit()
            .unwrap();
        let got = cluster.get::<f64>(&r).await.unwrap();
        let expected = eight_way_sum(&xs[start..end]);
        assert_eq!(
            got.to_bits(),
            expected.to_bits(),
            "{start}..{end}: {got} != {expected}"
        );
    }
}

#[tokio::test]
async fn small_objects_are_viewable() {
    let cluster = node().await;
    let m = cluster.register_file(guest("demo")).await.unwrap();
    for n in [1u64, 10, 1000, 20_000] {
        let xs: Vec<f64> = (0..n).map(|i| i as f64).collect();
        let data = cluster.put_f64s(&xs).await.unwrap();
        let r = cluster
            .task(&m, "sum_slice")
            .arg(&data)
            .arg(0u64)
            .arg(n)
            .submit()
            .unwrap();
        assert_eq!(
            cluster.get::<f64>(&r).await.unwrap(),
            xs.iter().sum::<f64>(),
            "n={n}"
        );
    }
}
