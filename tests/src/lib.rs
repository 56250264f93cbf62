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
