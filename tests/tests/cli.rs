//! The `host` command line against real node processes: register, status,
//! stop, restarts that reuse the compiled-module cache, and start-up errors.

use std::time::Duration;

use reef::ErrorCode;
use reef_testkit::{free_port, guest, HostProcess};

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn register_prints_the_hash_and_exports_and_status_shows_the_node() {
    let dir = tempfile::tempdir().unwrap();
    let node = HostProcess::start(dir.path(), &[]);
    let demo = guest("demo");
    let out = node.cli(&["register", demo.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let printed = text(&out);
    let hash = printed.lines().next().unwrap().trim();
    assert_eq!(hash.len(), 64, "{printed}");
    assert!(
        printed.contains("sum_slice") && printed.contains("Accumulator (add, total)"),
        "{printed}"
    );

    let out = node.cli(&["status"]);
    let status = text(&out);
    assert!(out.status.success(), "{status}");
    for expected in [
        "CPU",
        "object store:",
        "modules: 1",
        "tasks: 0",
        "actors: 0",
    ] {
        assert!(
            status.contains(expected),
            "missing {expected:?} in:\n{status}"
        );
    }

    let out = node.cli(&["register", "/nonexistent.wasm"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("/nonexistent.wasm"));
}

#[tokio::test]
async fn stop_fails_running_tasks_with_node_stopping() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = HostProcess::start(dir.path(), &[]);
    let cluster = node.connect().await;
    let bad = cluster.register_file(guest("bad")).await.unwrap();
    let running = cluster.task(&bad, "loop_forever").submit().unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let out = node.admin_cli(&["stop"]);
    assert!(out.status.success(), "{}", text(&out));
    let err = cluster.get_bytes(&running).await.err().unwrap();
    assert_eq!(err.code, ErrorCode::NodeStopping, "{err}");
    let Some(status) = node.wait_exit(Duration::from_secs(10)) else {
        let _ = node.kill();
        panic!("the node did not exit:\n{}", node.log());
    };
    assert!(status.success());
    // Nothing of the node is in /dev/shm (its arena is a memfd).
    let leftovers: Vec<_> = std::fs::read_dir("/dev/shm")
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(&format!("reef-{}-", node.port))
        })
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[tokio::test]
async fn a_restarted_node_reuses_compiled_modules() {
    let dir = tempfile::tempdir().unwrap();
    let hash = {
        let node = HostProcess::start(dir.path(), &[]);
        let cluster = node.connect().await;
        let m = cluster.register_file(guest("demo")).await.unwrap();
        assert!(!m.cached);
        // Registering the same bytes again is free.
        assert_eq!(
            cluster.register_file(guest("demo")).await.unwrap().hash,
            m.hash
        );
        node.admin_cli(&["stop"]);
        m.hash
    };
    let node = HostProcess::start(dir.path(), &[]);
    let cluster = node.connect().await;
    let m = cluster.register_file(guest("demo")).await.unwrap();
    assert_eq!(m.hash, hash);
    assert!(m.cached, "the restarted node compiled the module again");
    let r = cluster.task(&m, "add").arg(1.0).arg(2.0).submit().unwrap();
    assert_eq!(cluster.get::<f64>(&r).await.unwrap(), 3.0);
}

#[test]
fn two_nodes_on_one_port_fail_clearly() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let first = HostProcess::start(a.path(), &[]);
    let err = HostProcess::start_on(b.path(), first.port, &[]).expect_err("second node started");
    assert!(err.contains("is another node using this port"), "{err}");
}

#[test]
fn an_arena_larger_than_shared_memory_fails_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let err = HostProcess::start_on(dir.path(), free_port(), &["--object-store-memory", "1TiB"])
        .expect_err("a 1 TiB arena");
    assert!(err.contains("object store needs"), "{err}");
}

#[tokio::test]
async fn a_second_node_on_the_same_data_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let first = HostProcess::start(dir.path(), &[]);
    let err = HostProcess::spawn(dir.path(), free_port(), true, &[])
        .expect_err("a second node must not take over the data directory");
    assert!(
        err.contains("is in use by another node"),
        "unclear error: {err}"
    );
    // The first node is untouched: its socket, token and sessions still work.
    let out = first.cli(&["status"]);
    assert!(out.status.success(), "{}", text(&out));
    let cluster = first.connect().await;
    let m = cluster.register_file(guest("demo")).await.unwrap();
    let r = cluster.task(&m, "add").arg(1.0).arg(2.0).submit().unwrap();
    assert_eq!(cluster.get::<f64>(&r).await.unwrap(), 3.0);
}
