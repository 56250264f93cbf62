//! `host timeline`: the tasks that ran, on every node, as a valid Chrome
//! trace; and the driver's multi-get with progress.

use std::collections::HashSet;
use std::time::Duration;

use reef_testkit::{guest, HostProcess};
use serde_json::Value;

#[tokio::test(flavor = "multi_thread")]
async fn the_timeline_shows_every_task_of_every_node() {
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let head = HostProcess::start(dirs[0].path(), &["--num-cpus", "2"]);
    let worker = HostProcess::start_worker(dirs[1].path(), &head, &["--num-cpus", "2"]);
    let cluster = head.connect().await;
    let m = cluster.register_file(guest("nested")).await.unwrap();
    // Wait until the worker is in the head's view, then run tasks on both.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let worker_id = loop {
        let nodes = reef_testkit::cluster3::node_ids(&cluster).await;
        if let Some((_, id, _)) = nodes
            .iter()
            .find(|(a, _, s)| a == &worker.address && s == "alive")
        {
            break id.clone();
        }
        assert!(std::time::Instant::now() < deadline, "{nodes:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let mut refs = Vec::new();
    for i in 0..8 {
        let mut task = cluster.task(&m, "pause").arg(30u64).arg(i as f64);
        if i % 2 == 1 {
            task = task.strategy(reef::Strategy::NodeAffinity {
                node_id: worker_id.clone(),
                soft: false,
            });
        }
        refs.push(task.submit().unwrap());
    }
    let values: Vec<f64> = cluster.get_many(&refs).await.unwrap();
    assert_eq!(values.len(), 8);

    let file = dirs[0].path().join("trace.json");
    let out = head.cli(&["timeline", "--output", file.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let trace: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    let events = trace["traceEvents"].as_array().unwrap();
    let tasks: Vec<&Value> = events.iter().filter(|e| e["ph"] == "X").collect();
    let ids: HashSet<String> = tasks
        .iter()
        .map(|e| e["args"]["task_id"].as_str().unwrap().to_string())
        .collect();
    for r in &refs {
        assert!(
            ids.contains(&format!("{:#x}", r.id())),
            "{:#x} missing",
            r.id()
        );
    }
    for e in &tasks {
        assert!(e["name"].as_str().unwrap().ends_with(".pause"), "{e}");
        // Each paused 30 ms: the span is the run, at least that long.
        let dur = e["dur"].as_u64().unwrap();
        assert!((30_000..10_000_000).contains(&dur), "{e}");
        assert!(e["ts"].as_u64().unwrap() > 0);
        assert_eq!(e["args"]["attempt"], 1);
        assert_eq!(e["args"]["state"], "finished");
    }
    // Two nodes, each named; overlapping tasks of a node on distinct lanes.
    let pids: HashSet<u64> = tasks.iter().map(|e| e["pid"].as_u64().unwrap()).collect();
    assert_eq!(pids.len(), 2, "{trace}");
    let names = events
        .iter()
        .filter(|e| e["ph"] == "M" && e["name"] == "process_name")
        .count();
    assert_eq!(names, 2);
    for a in &tasks {
        for b in &tasks {
            if a != b && a["pid"] == b["pid"] && a["tid"] == b["tid"] {
                let (sa, sb) = (a["ts"].as_u64().unwrap(), b["ts"].as_u64().unwrap());
                let ea = sa + a["dur"].as_u64().unwrap();
                assert!(ea <= sb || sb + b["dur"].as_u64().unwrap() <= sa, "{a} {b}");
            }
        }
    }
    // --limit keeps the most recent ones.
    let out = head.cli(&["timeline", "--limit", "3"]);
    let trace: Value = serde_json::from_slice(&out.stdout).unwrap();
    let kept = trace["traceEvents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["ph"] == "X")
        .count();
    assert_eq!(kept, 3);
}

#[tokio::test]
async fn progress_counts_go_up_to_the_total() {
    let cluster = reef_testkit::node().await;
    let m = cluster.register_file(guest("nested")).await.unwrap();
    let refs: Vec<_> = (0..40)
        .map(|i| {
            cluster
                .task(&m, "pause")
                .arg(10u64)
                .arg(i as f64)
                .submit()
                .unwrap()
        })
        .collect();
    let mut seen = Vec::new();
    let values: Vec<f64> = cluster
        .get_many_with_progress(&refs, |done, total| seen.push((done, total)))
        .await
        .unwrap();
    assert_eq!(values, (0..40).map(f64::from).collect::<Vec<_>>());
    assert!(seen.iter().all(|(_, total)| *total == 40), "{seen:?}");
    assert!(seen.windows(2).all(|w| w[0].0 < w[1].0), "{seen:?}");
    assert_eq!(seen.last(), Some(&(40, 40)));
    assert_eq!(seen[0], (0, 40));

    // All ready already: (0, total) then (total, total); no refs: (0, 0).
    let mut again = Vec::new();
    let _: Vec<f64> = cluster
        .get_many_with_progress(&refs, |d, t| again.push((d, t)))
        .await
        .unwrap();
    assert_eq!(again, vec![(0, 40), (40, 40)]);
    let mut empty = Vec::new();
    let none: Vec<f64> = cluster
        .get_many_with_progress(&[], |d, t| empty.push((d, t)))
        .await
        .unwrap();
    assert!(none.is_empty());
    assert_eq!(empty, vec![(0, 0)]);

    // A failed task counts as ready; the get then fails with its error.
    let bad = cluster
        .task(&m, "pause")
        .arg("not a number")
        .submit()
        .unwrap();
    let mut with_bad = refs.clone();
    with_bad.push(bad);
    let mut last = None;
    let err = cluster
        .get_many_with_progress::<f64>(&with_bad, |d, t| last = Some((d, t)))
        .await
        .unwrap_err();
    assert_eq!(last, Some((41, 41)));
    assert!(
        matches!(
            err.code,
            reef::ErrorCode::BadArgument | reef::ErrorCode::GuestError
        ),
        "{err}"
    );
}
