//! The zero-copy properties of guest views (issue: "tests prove each of these"):
//! views share the store's pages; no guest can change a stored object; every
//! mapping is undone before an instance's memory is reused; a guest never sees
//! bytes of an object it was not given.

use reef::ErrorCode;
use reef_testkit::{guest, node, HostProcess};

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8 + 1).collect()
}

#[tokio::test]
async fn a_guest_writing_into_its_view_never_changes_the_object() {
    let cluster = node().await;
    let bad = cluster.register_file(guest("bad")).await.unwrap();
    let demo = cluster.register_file(guest("demo")).await.unwrap();
    // The last two sizes are stored on 2 MiB boundaries, in 2 MiB pages.
    for len in [300_000usize, 4 << 20, 8 << 20, (24 << 20) + 12_345] {
        let bytes = pattern(len);
        let obj = cluster.put_bytes(&bytes).await.unwrap();
        // The guest sees its own write (0xEE = 238) in its private copy...
        let wrote = cluster.task(&bad, "write_view").arg(&obj).submit().unwrap();
        assert_eq!(cluster.get::<u64>(&wrote).await.unwrap(), 238);
        // ...while the store, the driver and every other guest see the original.
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
async fn mappings_are_undone_before_an_instance_slot_is_reused() {
    reef_tests::check_slot_reuse(&node().await, 2 << 20, 30, 8).await;
}

#[tokio::test]
async fn a_guest_cannot_read_objects_it_was_not_given() {
    let cluster = node().await;
    let bad = cluster.register_file(guest("bad")).await.unwrap();
    let secret = cluster.put_bytes(&pattern(1 << 20)).await.unwrap();
    let small = cluster.put_bytes(b"small secret").await.unwrap();
    for target in [&secret, &small] {
        let r = cluster
            .task(&bad, "steal")
            .arg(target.id())
            .submit()
            .unwrap();
        let e = cluster.get_bytes(&r).await.err().expect("steal must fail");
        assert_eq!(e.code, ErrorCode::UnknownObject, "{e}");
        assert!(e.message.contains("not given"), "{e}");
    }
}

#[tokio::test]
async fn views_never_land_on_the_module_image() {
    let cluster = node().await;
    let bad = cluster.register_file(guest("bad")).await.unwrap();
    let demo = cluster.register_file(guest("demo")).await.unwrap();
    let obj = cluster.put_bytes(&pattern(1 << 20)).await.unwrap();
    let r = cluster
        .task(&bad, "view_over_data")
        .arg(&obj)
        .submit()
        .unwrap();
    let e = cluster.get_bytes(&r).await.err().unwrap();
    assert_eq!(e.code, ErrorCode::ViewError, "{e}");
    assert!(e.message.contains("data segments"), "{e}");
    let r = cluster
        .task(&bad, "view_beyond_memory")
        .arg(&obj)
        .submit()
        .unwrap();
    assert!(cluster.get_bytes(&r).await.is_err());
    // The module's instances still start from an intact image.
    for _ in 0..8 {
        let r = cluster
            .task(&demo, "add")
            .arg(1.0)
            .arg(2.0)
            .submit()
            .unwrap();
        assert_eq!(cluster.get::<f64>(&r).await.unwrap(), 3.0);
        let r = cluster.task(&bad, "read_secret").submit().unwrap();
        assert_eq!(cluster.get::<u64>(&r).await.unwrap(), 0);
    }
}

/// Node memory while 8 guests hold views of one 64 MiB object, against the
/// same readers holding copies. (The benchmark reports the figures; this
/// checks the order of magnitude.)
#[tokio::test]
async fn concurrent_readers_share_the_objects_pages() {
    let dir = tempfile::tempdir().unwrap();
    let node = HostProcess::start(
        dir.path(),
        &["--num-cpus", "8", "--object-store-memory", "256MiB"],
    );
    let cluster = node.connect().await;
    let demo = cluster.register_file(guest("demo")).await.unwrap();
    let obj = cluster.put_bytes(&pattern(64 << 20)).await.unwrap();
    let private_mib = || {
        let text = std::fs::read_to_string(format!("/proc/{}/smaps_rollup", node.pid())).unwrap();
        let kb = |key: &str| -> u64 {
            text.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        (kb("Private_Clean:") + kb("Private_Dirty:")) / 1024
    };
    let mut peaks = Vec::new();
    for task in ["hold_view", "hold_copy"] {
        let before = private_mib();
        let refs: Vec<_> = (0..8)
            .map(|_| {
                cluster
                    .task(&demo, task)
                    .arg(&obj)
                    .arg(1500u64)
                    .memory_limit(160 << 20)
                    .submit()
                    .unwrap()
            })
            .collect();
        let mut peak = 0;
        let (done, _) = tokio::join!(cluster.get_many::<u64>(&refs), async {
            for _ in 0..60 {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                peak = peak.max(private_mib().saturating_sub(before));
            }
        });
        done.unwrap();
        peaks.push(peak);
    }
    let (viewing, copying) = (peaks[0], peaks[1]);
    assert!(
        copying >= 8 * 64 * 3 / 4,
        "copies should cost ~512 MiB, saw {copying} MiB"
    );
    assert!(
        viewing <= 32,
        "8 views of one 64 MiB object added {viewing} MiB to the node"
    );
}
