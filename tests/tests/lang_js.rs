//! What only the JavaScript/TypeScript guest SDK (guest-sdk/js, componentize-js) has
//! beyond its conformance rows (js and ts, with their extra cases, in conformance.rs):
//! the pipeline's `Totals` actor, and the `measure` figures of its README.
//!
//! Modules: target/guests/pipeline_js.wasm (and js_demo.wasm for `measure`), built by
//! guest-sdk/js/build-examples.sh (scripts/build-guests.sh runs it).

use std::collections::BTreeMap;
use std::time::Instant;

use reef::{Arg, ErrorCode};
use reef_testkit::{guest, node, HostProcess};
use reef_tests::task_error;

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
