//! `max_calls` (Ray's option, opt-in here): a task's wasm instance serving
//! more than one call. The `bad` guest's `calls` counts its calls in a global,
//! so its answer tells whether the instance was fresh (1) or kept (more).
//! Against real `host` processes.

use std::time::Duration;

use reef::{Cluster, ErrorCode, Module};
use reef_testkit::{guest, node, node_with, HostProcess};

/// Runs `calls` with `max_calls` (`None`: the default) and returns its count.
async fn calls(cluster: &Cluster, m: &Module, max_calls: Option<u32>) -> u64 {
    let task = cluster.task(m, "calls");
    let task = match max_calls {
        Some(n) => task.max_calls(n),
        None => task,
    };
    cluster.get::<u64>(&task.submit().unwrap()).await.unwrap()
}

/// Counts of `n` calls in a row.
async fn counts(cluster: &Cluster, m: &Module, max_calls: Option<u32>, n: usize) -> Vec<u64> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(calls(cluster, m, max_calls).await);
    }
    out
}

#[tokio::test]
async fn an_instance_serves_up_to_max_calls_calls() {
    let cluster = node().await;
    let bad = cluster.register_file(guest("bad")).await.unwrap();
    // The default and 1: a fresh instance per task.
    assert_eq!(counts(&cluster, &bad, None, 4).await, [1, 1, 1, 1]);
    assert_eq!(counts(&cluster, &bad, Some(1), 4).await, [1, 1, 1, 1]);
    // 0: no limit, one instance serves them all.
    assert_eq!(counts(&cluster, &bad, Some(0), 6).await, [1, 2, 3, 4, 5, 6]);
    // 3: a fresh instance every 3 calls.
    assert_eq!(
        counts(&cluster, &bad, Some(3), 7).await,
        [1, 2, 3, 1, 2, 3, 1]
    );
    // The max_calls=0 instance is still there for its next call.
    assert_eq!(calls(&cluster, &bad, Some(0)).await, 7);
}

#[tokio::test]
async fn a_trap_or_an_error_drops_the_instance() {
    let cluster = node().await;
    let bad = cluster.register_file(guest("bad")).await.unwrap();
    assert_eq!(counts(&cluster, &bad, Some(0), 2).await, [1, 2]);
    let trapped = cluster.task(&bad, "trap").max_calls(0).submit().unwrap();
    let e = cluster
        .get_bytes(&trapped)
        .await
        .err()
        .expect("trap must fail");
    assert_eq!(e.code, ErrorCode::GuestTrap, "{e}");
    assert_eq!(counts(&cluster, &bad, Some(0), 2).await, [1, 2]);
    let failed = cluster.task(&bad, "fail").max_calls(0).submit().unwrap();
    let e = cluster
        .get_bytes(&failed)
        .await
        .err()
        .expect("fail must fail");
    assert_eq!(e.code, ErrorCode::GuestError, "{e}");
    assert_eq!(counts(&cluster, &bad, Some(0), 2).await, [1, 2]);
}

#[tokio::test]
async fn a_call_over_its_cpu_time_drops_the_instance() {
    let cluster = node().await;
    let bad = cluster.register_file(guest("bad")).await.unwrap();
    // The limits are part of the key: every call here has the same.
    let limit = Duration::from_millis(300);
    let count = || async {
        let r = cluster
            .task(&bad, "calls")
            .cpu_time(limit)
            .max_calls(0)
            .submit()
            .unwrap();
        cluster.get::<u64>(&r).await.unwrap()
    };
    assert_eq!((count().await, count().await), (1, 2));
    let looped = cluster
        .task(&bad, "loop_forever")
        .cpu_time(limit)
        .max_calls(0)
        .submit()
        .unwrap();
    let e = cluster.get_bytes(&looped).await.err().expect("must stop");
    assert_eq!(e.code, ErrorCode::CpuTimeLimit, "{e}");
    assert_eq!((count().await, count().await), (1, 2));
}

#[tokio::test]
async fn a_reused_instance_cannot_read_an_earlier_calls_objects() {
    let cluster = node().await;
    let bad = cluster.register_file(guest("bad")).await.unwrap();
    let obj = cluster.put_bytes(&vec![7u8; 1 << 20]).await.unwrap();
    assert_eq!(calls(&cluster, &bad, Some(0)).await, 1);
    // Given the object, the instance reads it...
    let leaked = cluster
        .task(&bad, "leak_view")
        .arg(&obj)
        .max_calls(0)
        .submit()
        .unwrap();
    cluster.get::<u64>(&leaked).await.unwrap();
    // ...and in its next call, not given it, it cannot, by copy or view.
    let stolen = cluster
        .task(&bad, "steal")
        .arg(obj.id())
        .max_calls(0)
        .submit()
        .unwrap();
    let e = cluster
        .get_bytes(&stolen)
        .await
        .err()
        .expect("steal must fail");
    assert_eq!(e.code, ErrorCode::UnknownObject, "{e}");
    // `steal` ran in the kept instance: had it run in a fresh one, the kept
    // instance (count 1) would still be there and this would answer 2. The
    // failure dropped it.
    assert_eq!(calls(&cluster, &bad, Some(0)).await, 1);
}

#[tokio::test]
async fn a_reused_instance_never_sees_an_earlier_calls_view() {
    let cluster = node().await;
    let bad = cluster.register_file(guest("bad")).await.unwrap();
    // 1 MiB: above the inline threshold, so the view is a mapping of the arena.
    let len = 1usize << 20;
    let bytes: Vec<u8> = (0..len).map(|i| (i % 251) as u8 + 1).collect();
    let obj = cluster.put_bytes(&bytes).await.unwrap();
    assert_eq!(calls(&cluster, &bad, Some(0)).await, 1);
    // The guest maps a view and leaks it: its buffer stays allocated in the
    // instance, the mapping must not.
    let leaked = cluster
        .task(&bad, "leak_view")
        .arg(&obj)
        .max_calls(0)
        .submit()
        .unwrap();
    let addr = cluster.get::<u64>(&leaked).await.unwrap();
    let read = cluster
        .task(&bad, "read_at")
        .arg(addr)
        .arg(len as u64)
        .max_calls(0)
        .submit()
        .unwrap();
    assert_eq!(cluster.get::<u64>(&read).await.unwrap(), 0);
    // All of it ran in the one instance.
    assert_eq!(calls(&cluster, &bad, Some(0)).await, 2);
    // And the object itself is intact.
    assert_eq!(&cluster.get_bytes(&obj).await.unwrap()[..], &bytes[..]);
}

#[tokio::test]
async fn another_tenant_never_gets_the_instance() {
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let head = HostProcess::start(dirs[0].path(), &[]);
    let token_a = head.add_tenant("team-a", dirs[1].path(), &[]);
    let token_b = head.add_tenant("team-b", dirs[1].path(), &[]);
    let a = head.connect_as(&token_a).await;
    let b = head.connect_as(&token_b).await;
    let m_a = a.register_file(guest("bad")).await.unwrap();
    // The same bytes: the same module (same hash) for B.
    let m_b = b.register_file(guest("bad")).await.unwrap();
    assert_eq!(m_a.hash, m_b.hash);
    assert_eq!(counts(&a, &m_a, Some(0), 2).await, [1, 2]);
    assert_eq!(counts(&b, &m_b, Some(0), 2).await, [1, 2]);
    assert_eq!(calls(&a, &m_a, Some(0)).await, 3);
}

#[tokio::test]
async fn the_pool_is_bounded_by_warm_instances() {
    // One idle instance at most: a second key's evicts the first's.
    let cluster = node_with(&["--warm-instances", "1"]).await;
    let bad = cluster.register_file(guest("bad")).await.unwrap();
    assert_eq!(counts(&cluster, &bad, Some(0), 2).await, [1, 2]);
    assert_eq!(counts(&cluster, &bad, Some(100), 2).await, [1, 2]);
    assert_eq!(calls(&cluster, &bad, Some(0)).await, 1);
    // None at all: every task in a fresh instance.
    let cluster = node_with(&["--warm-instances", "0"]).await;
    let bad = cluster.register_file(guest("bad")).await.unwrap();
    assert_eq!(counts(&cluster, &bad, Some(0), 3).await, [1, 1, 1]);
}
