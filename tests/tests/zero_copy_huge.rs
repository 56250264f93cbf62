//! The zero-copy properties of `zero_copy.rs` for objects of 8 MiB and more,
//! which the node stores on 2 MiB boundaries of an arena in 2 MiB pages and
//! the SDKs view through 2 MiB-aligned buffers (mapped with 2 MiB entries).

use std::time::{Duration, Instant};

use reef_testkit::{guest, node, HostProcess};

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8 + 1).collect()
}

#[tokio::test]
async fn a_guest_writing_into_a_large_view_never_changes_the_object() {
    let cluster = node().await;
    let bad = cluster.register_file(guest("bad")).await.unwrap();
    let demo = cluster.register_file(guest("demo")).await.unwrap();
    for len in [8 << 20, (24 << 20) + 12_345] {
        let bytes = pattern(len);
        let obj = cluster.put_bytes(&bytes).await.unwrap();
        let wrote = cluster.task(&bad, "write_view").arg(&obj).submit().unwrap();
        assert_eq!(cluster.get::<u64>(&wrote).await.unwrap(), 238);
        assert_eq!(&cluster.get_bytes(&obj).await.unwrap()[..], &bytes[..]);
        let touched = cluster
            .task(&demo, "touch_view")
            .arg(&obj)
            .submit()
            .unwrap();
        let expected: u64 = bytes.iter().step_by(4096).map(|&b| b as u64).sum();
        assert_eq!(cluster.get::<u64>(&touched).await.unwrap(), expected);
    }
}

#[tokio::test]
async fn large_mappings_are_undone_before_an_instance_slot_is_reused() {
    let cluster = node().await;
    let bad = cluster.register_file(guest("bad")).await.unwrap();
    let demo = cluster.register_file(guest("demo")).await.unwrap();
    let obj = cluster.put_bytes(&vec![0x5Au8; 16 << 20]).await.unwrap();
    for _ in 0..10 {
        let views: Vec<_> = (0..4)
            .map(|_| {
                cluster
                    .task(&demo, "touch_view")
                    .arg(&obj)
                    .submit()
                    .unwrap()
            })
            .collect();
        // Fresh instances reading the first 40 MiB of their heap, where the
        // 2 MiB-aligned 16 MiB views of earlier instances were mapped.
        let secrets: Vec<_> = (0..4)
            .map(|_| cluster.task(&bad, "read_heap").arg(40u64).submit().unwrap())
            .collect();
        for v in cluster.get_many::<u64>(&views).await.unwrap() {
            assert_eq!(v, 0x5A * 4096);
        }
        for s in cluster.get_many::<u64>(&secrets).await.unwrap() {
            assert_eq!(
                s, 0,
                "a fresh instance saw bytes of an object it was not given"
            );
        }
    }
}

#[tokio::test]
async fn large_views_sum_like_a_plain_loop() {
    let cluster = node().await;
    let demo = cluster.register_file(guest("demo")).await.unwrap();
    let c_demo = cluster.register_file(guest("c_demo")).await.unwrap();
    // Integers: every order of additions gives the exact sum.
    let n = 3_000_001u64;
    let xs: Vec<f64> = (0..n).map(|i| i as f64).collect();
    let obj = cluster.put_f64s(&xs).await.unwrap();
    for module in [&demo, &c_demo] {
        for (start, end) in [(0, n), (1, n - 3), (5, 5), (7, 20)] {
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
/// with 2 MiB entries too. Where the kernel cannot build 2 MiB pages (before
/// Linux 6.1, or none free), there is nothing to check.
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
            peak = peak.max(smaps_mib(pid, "ShmemPmdMapped:").saturating_sub(arena_pmd));
        }
    });
    for sum in done.unwrap() {
        assert_eq!(sum, 4096);
    }
    assert!(
        peak >= 4 * 16,
        "4 views of a 16 MiB object added only {peak} MiB of 2 MiB mappings"
    );
}
