//! Fair sharing between tenants against a real node: two tenants flooding
//! one node get its CPUs in the ratio of their weights (`host tenant add
//! --weight`), not in the order they submitted, and one tenant's task
//! submitted behind another's queue of 20,000 runs before that queue drains.
//! Properties (counts, order), not timings.

use std::process::Output;
use std::time::{Duration, Instant};

use reef::{Cluster, ErrorCode, ObjectRef};
use reef_testkit::{guest, HostProcess};

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Waits (up to 10 s) until the node knows the tenant of `cluster`'s quotas,
/// and so its weight, which comes in the same record of the cluster view:
/// a task asking for more CPUs than the node has is refused by the
/// tenant's `--max-cpus 1` quota rather than as infeasible.
async fn wait_for_quotas(cluster: &Cluster, module: &reef::Module) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = cluster
            .task(module, "add")
            .arg(1.0)
            .arg(2.0)
            .num_cpus(64.0)
            .submit()
            .unwrap();
        let outcome = cluster.get::<f64>(&r).await;
        if outcome
            .as_ref()
            .is_err_and(|e| e.code == ErrorCode::QuotaExceeded)
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the node never learned the quotas: {outcome:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `n` tasks of `pause(ms, i)`: each holds one CPU for `ms` milliseconds.
fn flood(cluster: &Cluster, nested: &reef::Module, n: usize, ms: u64) -> Vec<ObjectRef> {
    (0..n)
        .map(|i| {
            cluster
                .task(nested, "pause")
                .arg(ms)
                .arg(i as f64)
                .submit()
                .unwrap()
        })
        .collect()
}

/// How many of `refs` are done now.
async fn done(cluster: &Cluster, refs: &[ObjectRef]) -> usize {
    let (ready, _) = cluster
        .wait(refs, refs.len(), Some(Duration::ZERO))
        .await
        .unwrap();
    ready.len()
}

#[tokio::test]
async fn tenants_competing_for_cpus_share_them_by_weight() {
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let head = HostProcess::start(dirs[0].path(), &["--num-cpus", "2"]);
    let a_token = head.add_tenant("a", dirs[1].path(), &["--max-cpus", "1", "--weight", "3"]);
    let b_token = head.add_tenant("b", dirs[1].path(), &["--max-cpus", "1"]);
    let out = head.admin_cli(&["tenant", "list", "--json"]);
    assert!(text(&out).contains(r#""weight":3.0"#), "{}", text(&out));
    let a = head.connect_as(&a_token).await;
    let b = head.connect_as(&b_token).await;
    let a_nested = a.register_file(guest("nested")).await.unwrap();
    let b_nested = b.register_file(guest("nested")).await.unwrap();
    wait_for_quotas(&a, &a_nested).await;
    wait_for_quotas(&b, &b_nested).await;

    // B floods first, then A: first come, first served would finish all of
    // B's before any of A's.
    let b_refs = flood(&b, &b_nested, 120, 20);
    b.wait(&[], 0, None).await.unwrap(); // B's submissions are in
    let a_refs = flood(&a, &a_nested, 120, 20);
    let a_sum: Vec<f64> = a.get_many(&a_refs).await.unwrap();
    assert_eq!(a_sum.len(), 120);
    // While A's 120 ran, B (weight 1) got about a third as many grants.
    let b_done = done(&b, &b_refs).await;
    assert!(b_done > 0, "B got no CPU at all while A flooded");
    let ratio = 120.0 / b_done as f64;
    assert!(
        (2.0..=4.5).contains(&ratio),
        "A (weight 3) finished 120 tasks while B (weight 1) finished {b_done}: ratio {ratio:.2}, expected about 3"
    );
    // Work-conserving: B alone now gets the node and finishes.
    let b_all: Vec<f64> = b.get_many(&b_refs).await.unwrap();
    assert_eq!(b_all.len(), 120);
}

#[tokio::test]
async fn a_task_behind_another_tenants_queue_runs_before_it_drains() {
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let head = HostProcess::start(dirs[0].path(), &["--num-cpus", "1"]);
    let b_token = head.add_tenant("b", dirs[1].path(), &[]);
    let a = head.connect().await; // tenant `default`
    let b = head.connect_as(&b_token).await;
    let a_demo = a.register_file(guest("demo")).await.unwrap();
    let b_nested = b.register_file(guest("nested")).await.unwrap();

    // 20,000 tasks of 1 ms on one CPU: at least 20 s to drain.
    let b_refs = flood(&b, &b_nested, 20_000, 1);
    b.wait(&[], 0, None).await.unwrap(); // all 20,000 are queued on the node
    let r = a.task(&a_demo, "add").arg(1.0).arg(2.0).submit().unwrap();
    assert_eq!(a.get::<f64>(&r).await.unwrap(), 3.0);
    let b_done = done(&b, &b_refs).await;
    assert!(
        b_done < b_refs.len() / 2,
        "tenant default's task finished only after {b_done} of tenant b's 20,000 queued before it"
    );
    // And B's queue goes on being served.
    assert_eq!(b.get::<f64>(&b_refs[b_done]).await.unwrap(), b_done as f64);
}
