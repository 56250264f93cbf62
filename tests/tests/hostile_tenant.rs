//! The hostile-tenant suite's end-to-end case (the single attacks have
//! their own tests: `tenancy_credentials`, `tenancy_objects`,
//! `tenancy_edges`, `tenancy_quotas`, `tenancy_scope`, `tenancy_fair`,
//! `bad_input`, `zero_copy`): on a head and a worker (real `host`
//! processes), tenant B attacks while tenant A works — scraping listings,
//! forging A's ids (from a driver and from a guest), running trapping,
//! looping, memory-eating and log-flooding guests, putting past its quota,
//! then being revoked. Every attack is refused or contained, and afterwards
//! A's objects hold their bytes, A's actor its state, and every one of A's
//! tasks run meanwhile gave the right answer.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use reef::{Cluster, ConnectOptions, ErrorCode, ListOptions};
use reef_testkit::{guest, HostProcess};

/// Bytes that differ everywhere, so a changed byte anywhere is seen.
fn pattern(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

/// The error `r` fails with (it must fail).
async fn failure(driver: &Cluster, r: &reef::ObjectRef) -> reef::Error {
    driver
        .get_bytes_timeout(r, Duration::from_secs(60))
        .await
        .err()
        .unwrap_or_else(|| panic!("{r:?} succeeded"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_tenant_is_contained_and_the_other_tenants_work_goes_on() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let nodes = ["--num-cpus", "2", "--object-store-memory", "512MiB"];
    let head = HostProcess::start(dirs[0].path(), &nodes);
    let worker = HostProcess::start_worker(dirs[1].path(), &head, &nodes);
    let token_a = head.add_tenant("victim", dirs[2].path(), &[]);
    let token_b = head.add_tenant(
        "attacker",
        dirs[2].path(),
        &[
            "--max-arena-bytes",
            "48MiB",
            "--max-call-memory",
            "256MiB",
            "--max-pending-tasks",
            "500",
        ],
    );
    let a = head.connect_as(&token_a).await;
    let a_worker = worker.connect_as(&token_a).await;
    let b = head.connect_as(&token_b).await;
    let b_worker = worker.connect_as(&token_b).await;

    // A's state: a large and a small object, an actor with a total, a
    // steady stream of tasks on both nodes.
    let big = pattern(8 << 20, 7);
    let small = pattern(1000, 9);
    let a_big = a.put_bytes(&big).await.unwrap();
    let a_small = a_worker.put_bytes(&small).await.unwrap();
    let a_nested = a.register_file(guest("nested")).await.unwrap();
    let a_dag = a.register_file(guest("dag")).await.unwrap();
    let counter = a
        .actor(&a_nested, "Counter")
        .arg(0.0)
        .name("ledger")
        .create()
        .await
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let steady = {
        let (a, a_worker, a_dag, stop) = (a.clone(), a_worker.clone(), a_dag.clone(), stop.clone());
        tokio::spawn(async move {
            let mut done = 0u64;
            while !stop.load(Ordering::Relaxed) {
                for (driver, i) in [(&a, done), (&a_worker, done + 1)] {
                    let r = driver
                        .task(&a_dag, "combine")
                        .arg(i as f64)
                        .arg(1.0)
                        .submit()
                        .unwrap();
                    let got = driver.get::<f64>(&r).await.expect("A's task failed");
                    assert_eq!(got, i as f64 + 1.0, "A's task answered wrong");
                }
                done += 2;
            }
            done
        })
    };

    // 1. Scraping: B's listings show nothing of A's.
    for driver in [&b, &b_worker] {
        let objects = driver.list_objects(&ListOptions::new()).await.unwrap().rows;
        assert!(
            objects
                .iter()
                .all(|o| o.object_id != a_big.id() && o.object_id != a_small.id()),
            "B listed A's objects"
        );
        let actors = driver.list_actors(&ListOptions::new()).await.unwrap().rows;
        assert!(actors.iter().all(|x| x.actor_id != counter.id()));
        let tasks = driver.list_tasks(&ListOptions::new()).await.unwrap().rows;
        assert!(tasks.iter().all(|t| t.tenant == "attacker"), "{tasks:?}");
    }

    // 2. Forged ids, from B's drivers and from B's guest.
    let b_bad = b.register_file(guest("bad")).await.unwrap();
    for driver in [&b, &b_worker] {
        for id in [a_big.id(), a_small.id()] {
            let e = failure(driver, &driver.object_ref(id)).await;
            assert_eq!(e.code, ErrorCode::UnknownObject, "{e}");
            // Passed as an argument to a guest that would overwrite it.
            let w = driver
                .task(&b_bad, "write_view")
                .arg(driver.object_ref(id))
                .submit()
                .unwrap();
            assert_eq!(failure(driver, &w).await.code, ErrorCode::UnknownObject);
            // Read by a guest by its raw id.
            let s = driver.task(&b_bad, "steal").arg(id).submit().unwrap();
            assert_eq!(failure(driver, &s).await.code, ErrorCode::UnknownObject);
        }
    }
    let e = b
        .get_actor("ledger")
        .await
        .err()
        .expect("B found A's actor");
    assert_eq!(e.code, ErrorCode::UnknownActor, "{e}");

    // 3. Guests that trap, loop, eat memory and flood logs fail (or finish)
    //    on their own; the node goes on.
    let trap = b_worker.task(&b_bad, "trap").submit().unwrap();
    assert_eq!(failure(&b_worker, &trap).await.code, ErrorCode::GuestTrap);
    let looping = b
        .task(&b_bad, "loop_forever")
        .cpu_time(Duration::from_millis(300))
        .submit()
        .unwrap();
    let e = failure(&b, &looping).await;
    assert_eq!(e.code, ErrorCode::CpuTimeLimit, "{e}");
    let greedy = b_worker
        .task(&b_bad, "eat_memory")
        .memory_limit(128 << 20)
        .submit()
        .unwrap();
    let e = failure(&b_worker, &greedy).await;
    assert_eq!(e.code, ErrorCode::MemoryLimit, "{e}");
    // More than the tenant's maximum per call is refused outright.
    let too_big = b
        .task(&b_bad, "eat_memory")
        .memory_limit(1 << 30)
        .submit()
        .unwrap();
    assert_eq!(failure(&b, &too_big).await.code, ErrorCode::QuotaExceeded);
    let flood = b.task(&b_bad, "flood").arg(24u64).submit().unwrap();
    b.get_bytes_timeout(&flood, Duration::from_secs(60))
        .await
        .expect("the log flood is cut, not fatal");

    // 4. Puts past B's arena quota fail; what B holds stays within it.
    let mut held = Vec::new();
    let mut refused = None;
    for i in 0..8 {
        match b.put_bytes(&pattern(16 << 20, i)).await {
            Ok(r) => held.push(r),
            Err(e) => {
                refused = Some(e);
                break;
            }
        }
    }
    let e = refused.expect("B put past its arena quota");
    assert_eq!(e.code, ErrorCode::QuotaExceeded, "{e}");
    assert!(held.len() <= 3, "B holds {} puts of 16 MiB", held.len());

    // 5. Revoked, B's sessions end and its token opens nothing.
    let out = head.admin_cli(&["tenant", "remove", "attacker"]);
    assert!(out.status.success(), "{out:?}");
    let mut ended = false;
    for _ in 0..200 {
        if b.put_bytes(b"still here?").await.is_err() {
            ended = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ended, "a revoked tenant's session went on");
    // Every node learns of the revocation with the next cluster view (tens
    // of ms after the head): from then on the token opens nothing there.
    let mut refused_on_worker = false;
    for _ in 0..200 {
        let options = ConnectOptions::default().token_file(&token_b).unwrap();
        if Cluster::connect_with(&worker.address, options)
            .await
            .is_err()
        {
            refused_on_worker = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        refused_on_worker,
        "the worker still took a revoked token after 10 s"
    );

    // A's work went on throughout, and A's state is intact.
    stop.store(true, Ordering::Relaxed);
    let done = steady.await.expect("A's steady work");
    assert!(done >= 2, "A's tasks did not run during the attacks");
    assert_eq!(&*a_worker.get_bytes(&a_big).await.unwrap(), &big[..]);
    assert_eq!(&*a.get_bytes(&a_small).await.unwrap(), &small[..]);
    let add = counter.call("add").arg(1.0).submit().unwrap();
    assert_eq!(a.get::<f64>(&add).await.unwrap(), 1.0);
    let alive = a.status().await.unwrap().nodes;
    assert_eq!(
        alive.iter().filter(|n| n.state == "alive").count(),
        2,
        "{alive:?}"
    );
}
