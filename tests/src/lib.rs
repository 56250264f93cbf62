//! Assertions the integration and conformance tests share. Nodes, clusters
//! and guest modules come from `reef-testkit`.

/// The error a task failed with (panics when it succeeded).
pub async fn task_error(cluster: &reef::Cluster, r: reef::ObjectRef) -> reef::Error {
    cluster
        .get_bytes(&r)
        .await
        .err()
        .expect("the task should fail")
}

/// `add(a, b)` of a module that exports it (every language's demo does).
pub async fn add(cluster: &reef::Cluster, m: &reef::Module, a: f64, b: f64) -> f64 {
    let r = cluster.task(m, "add").arg(a).arg(b).submit().unwrap();
    cluster.get::<f64>(&r).await.unwrap()
}

/// After a failure: the node still runs `demo`'s tasks and, when given, still
/// holds an object with exactly these bytes.
pub async fn still_serving(
    cluster: &reef::Cluster,
    demo: &reef::Module,
    kept: Option<(&reef::ObjectRef, &[u8])>,
) {
    assert_eq!(add(cluster, demo, 20.0, 22.0).await, 42.0);
    if let Some((kept, expected)) = kept {
        assert_eq!(&cluster.get_bytes(kept).await.unwrap()[..], expected);
    }
}

/// The seed demo, the same in every guest language: a 64 MiB array of f64 (0..8M),
/// four `sum_slice` tasks over zero-copy views of quarters of it, and an
/// `Accumulator` actor fed 10, 5, 100. Panics unless the numbers are the seed's:
/// partial sums 2.0e12 / 6.0e12 / 1.0e13 / 1.4e13 (total 3.2e13), totals 10 / 15 / 115.
pub async fn assert_seed_demo(cluster: &reef::Cluster, module: &std::path::Path) {
    let m = cluster.register_file(module).await.unwrap();
    let xs: Vec<f64> = (0..8_000_000u64).map(|i| i as f64).collect();
    let data = cluster.put_f64s(&xs).await.unwrap();
    let parts: Vec<_> = (0..4u64)
        .map(|q| {
            cluster
                .task(&m, "sum_slice")
                .arg(&data)
                .arg(q * 2_000_000)
                .arg((q + 1) * 2_000_000)
                .submit()
                .unwrap()
        })
        .collect();
    let sums: Vec<f64> = cluster.get_many(&parts).await.unwrap();
    let expected: Vec<f64> = (0..4u64)
        .map(|q| (q * 2_000_000..(q + 1) * 2_000_000).map(|i| i as f64).sum())
        .collect();
    assert_eq!(sums, expected, "{}", module.display());
    assert_eq!(format!("{:.1e}", sums[0]), "2.0e12");
    assert_eq!(format!("{:.1e}", sums[3]), "1.4e13");
    assert_eq!(format!("{:.1e}", sums.iter().sum::<f64>()), "3.2e13");

    let acc = cluster.actor(&m, "Accumulator").create().await.unwrap();
    let mut totals = Vec::new();
    for x in [10.0, 5.0, 100.0] {
        totals.push(
            cluster
                .get::<f64>(&acc.call("add").arg(x).submit().unwrap())
                .await
                .unwrap(),
        );
    }
    assert_eq!(totals, vec![10.0, 15.0, 115.0], "{}", module.display());
}

/// Mapping undone before slot reuse: `rounds` times, four `bad` instances
/// write 0xEE through a view of a `len`-byte object of 0x5A bytes, then four
/// fresh `bad` instances read the first `heap_mib` MiB of their heap (where
/// the views were mapped) and must see only zeros. The same module both
/// times, because the instance pool hands a module its own freed slots first.
pub async fn check_slot_reuse(cluster: &reef::Cluster, len: usize, rounds: usize, heap_mib: u64) {
    let bad = cluster
        .register_file(reef_testkit::guest("bad"))
        .await
        .unwrap();
    let obj = cluster.put_bytes(&vec![0x5Au8; len]).await.unwrap();
    for _ in 0..rounds {
        let writes: Vec<_> = (0..4)
            .map(|_| cluster.task(&bad, "write_view").arg(&obj).submit().unwrap())
            .collect();
        for w in cluster.get_many::<u64>(&writes).await.unwrap() {
            assert_eq!(w, 0xEE);
        }
        let reads: Vec<_> = (0..4)
            .map(|_| {
                cluster
                    .task(&bad, "read_heap")
                    .arg(heap_mib)
                    .submit()
                    .unwrap()
            })
            .collect();
        for s in cluster.get_many::<u64>(&reads).await.unwrap() {
            assert_eq!(
                s, 0,
                "a fresh instance saw bytes of a view of an earlier instance"
            );
        }
    }
    assert_eq!(
        &cluster.get_bytes(&obj).await.unwrap()[..],
        &vec![0x5Au8; len][..],
        "a guest's write reached the stored object"
    );
}
