//! JavaScript and TypeScript guests (guest-sdk/js).

use std::time::{Duration, Instant};

use reef_tests::{assert_seed_demo, guest, node, HostProcess};

#[tokio::test]
async fn seed_demo_js_and_ts() {
    let cluster = node().await;
    assert_seed_demo(&cluster, &guest("js_demo")).await;
}

/// Measures a list of modules (`REEF_JS_MEASURE=a.wasm,b.wasm`): size, first and cached
/// registration, noop round trip, and a sum over a 64 MiB object.
#[tokio::test(flavor = "multi_thread")]
#[ignore]
async fn measure() {
    let list = std::env::var("REEF_JS_MEASURE").unwrap_or_default();
    for path in list.split(',').filter(|p| !p.is_empty()) {
        let wasm = std::fs::read(path).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let first;
        {
            let node = HostProcess::start(dir.path(), &["--object-store-memory", "256MiB"]);
            let cluster = reef::Cluster::connect(&node.address).await.unwrap();
            let t = Instant::now();
            let m = cluster.register(wasm.clone()).await.unwrap();
            first = t.elapsed();
            drop(m);
        }
        let node = HostProcess::start(dir.path(), &["--object-store-memory", "256MiB"]);
        let cluster = reef::Cluster::connect(&node.address).await.unwrap();
        let t = Instant::now();
        let m = cluster.register(wasm.clone()).await.unwrap();
        let cached = t.elapsed();
        let mut rt = Vec::new();
        for i in 0..120 {
            let t = Instant::now();
            let r = cluster.task(&m, "noop").submit().unwrap();
            cluster.get_bytes(&r).await.unwrap();
            if i >= 20 {
                rt.push(t.elapsed());
            }
        }
        rt.sort();
        let xs: Vec<f64> = (0..8_000_000u64).map(|i| i as f64).collect();
        let data = cluster.put_f64s(&xs).await.unwrap();
        let mut sums = Vec::new();
        for _ in 0..5 {
            let t = Instant::now();
            let r = cluster.task(&m, "sum").arg(&data).submit().unwrap();
            let s: f64 = cluster.get(&r).await.unwrap();
            assert_eq!(s, 31999996000000.0);
            sums.push(t.elapsed());
        }
        sums.sort();
        let r = cluster.task(&m, "ids").arg(&data).submit().unwrap();
        let ids = String::from_utf8_lossy(&cluster.get_bytes(&r).await.unwrap()).into_owned();
        println!(
            "{path}: {} bytes, first registration {:?}, cached {:?}, noop round trip median {:?} p90 {:?}, sum 64 MiB median {:?} (min {:?}), data id {} seen as `{ids}`",
            wasm.len(),
            first,
            cached,
            rt[rt.len() / 2],
            rt[rt.len() * 9 / 10],
            sums[2],
            sums[0],
            data.id(),
        );
        let _ = Duration::ZERO;
    }
}
