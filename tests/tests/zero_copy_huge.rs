//! The zero-copy properties of `zero_copy.rs` for objects of 8 MiB and more,
//! which the node stores on 2 MiB boundaries of an arena in 2 MiB pages and
//! the SDKs view through 2 MiB-aligned buffers (mapped with 2 MiB entries).
//! That a guest's write stays private is checked there, large sizes included.

use std::time::{Duration, Instant};

use reef_testkit::{guest, node, HostProcess};

#[tokio::test]
async fn large_mappings_are_undone_before_an_instance_slot_is_reused() {
    // 2 MiB-aligned 16 MiB views: the first 40 MiB of heap covers them.
    reef_tests::check_slot_reuse(&node().await, 16 << 20, 10, 40).await;
}

#[tokio::test]
async fn large_views_sum_like_a_plain_loop() {
    let cluster = node().await;
    let demo = cluster.register_file(guest("demo")).await.unwrap();
    let c_demo = cluster.register_file(guest("c_demo")).await.unwrap();
    // Integers: every order of additions gives the exact sum. 40 MB: the
    // node reads a put this large from the driver with several threads.
    let n = 5_000_001u64;
    let xs: Vec<f64> = (0..n).map(|i| i as f64).collect();
    let obj = cluster.put_f64s(&xs).await.unwrap();
    for module in [&demo, &c_demo] {
        for (start, end) in [(0, n), (1, n - 3), (5, 5), (7, 20), (n / 2 - 9, n / 2 + 9)] {
            let r = cluster
                .task(module, "sum_slice")
                .arg(&obj)
                .arg(start)
                .arg(end)
                .submit()
                .unwrap();
            let expected: f64 = xs[start as usize..end as usize].iter().sum();
            assert_eq!(cluster.get::<f64>(&r).await.unwrap(), expected);
        }
    }
}

/// `key` of /proc/PID/smaps_rollup, in MiB.
fn smaps_mib(pid: u32, key: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap();
    text.lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0)
        / 1024
}

/// Once the node has rebuilt its arena in 2 MiB pages (its own mapping of it
/// is then mapped with 2 MiB entries), views of a large object are mapped
/// with 2 MiB entries too; and still once a driver on the machine has read
/// the object (which moves it into a segment of its own, filled by the node
/// in 2 MiB pages). Where the kernel cannot build 2 MiB pages (before Linux
/// 6.1, or none free), there is nothing to check.
#[tokio::test]
async fn large_views_are_mapped_in_2_mib_pages() {
    let dir = tempfile::tempdir().unwrap();
    let node = HostProcess::start(
        dir.path(),
        &["--num-cpus", "4", "--object-store-memory", "64MiB"],
    );
    let pid = node.pid();
    let deadline = Instant::now() + Duration::from_secs(20);
    while smaps_mib(pid, "ShmemPmdMapped:") < 64 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let arena_pmd = smaps_mib(pid, "ShmemPmdMapped:");
    if arena_pmd < 64 {
        eprintln!("the arena is not in 2 MiB pages here ({arena_pmd} MiB); skipped");
        return;
    }
    let cluster = node.connect().await;
    let demo = cluster.register_file(guest("demo")).await.unwrap();
    let obj = cluster.put_bytes(&vec![1u8; 16 << 20]).await.unwrap();
    // MiB of 2 MiB mappings that 4 tasks holding a view of `obj` add.
    let views_pmd = || async {
        let before = smaps_mib(pid, "ShmemPmdMapped:");
        let held: Vec<_> = (0..4)
            .map(|_| {
                cluster
                    .task(&demo, "hold_view")
                    .arg(&obj)
                    .arg(1500u64)
                    .submit()
                    .unwrap()
            })
            .collect();
        let mut peak = 0;
        let (done, _) = tokio::join!(cluster.get_many::<u64>(&held), async {
            for _ in 0..50 {
                tokio::time::sleep(Duration::from_millis(20)).await;
                peak = peak.max(smaps_mib(pid, "ShmemPmdMapped:").saturating_sub(before));
            }
        });
        for sum in done.unwrap() {
            assert_eq!(sum, 4096);
        }
        peak
    };
    let peak = views_pmd().await;
    assert!(
        peak >= 4 * 16,
        "4 views of a 16 MiB object added only {peak} MiB of 2 MiB mappings"
    );
    let read = cluster.get_bytes(&obj).await.unwrap();
    assert!(read.is_zero_copy(), "the driver maps the object's segment");
    assert!(read.iter().all(|&b| b == 1));
    let peak = views_pmd().await;
    assert!(
        peak >= 4 * 16,
        "4 views of a 16 MiB object moved into a segment added only {peak} MiB of 2 MiB \
         mappings"
    );
}
