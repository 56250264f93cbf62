//! The test kit against real `host` processes (build `-p reef-host --release`
//! first): a node is up when `start` returns, its files are where they are
//! said to be, dropping it stops it, a worker joins its head, and a node that
//! cannot start says why.

use std::time::Duration;

use reef_testkit::{cluster3, host_bin, HostProcess, Launch, LaunchError};

/// Whether process `pid` still exists (a zombie counts as gone: it was reaped
/// or is about to be).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| !stat.contains(") Z "))
        .unwrap_or(false)
}

#[tokio::test]
async fn a_node_serves_when_started_and_stops_when_dropped() {
    let host = Launch::head()
        .binary(host_bin())
        .args(["--object-store-memory", "64MiB"])
        .start()
        .unwrap();
    let (pid, dir) = (host.pid(), host.dir.clone());
    assert!(dir.join("token").is_file());
    assert_eq!(host.token_file, dir.join("token"));
    let cluster = reef::Cluster::connect_with_token(&host.address, &host.token().unwrap())
        .await
        .unwrap();
    let status = cluster.status().await.unwrap();
    assert_eq!(status.nodes.len(), 1);
    drop(cluster);
    drop(host);
    assert!(!alive(pid), "the node outlived its RunningHost");
    assert!(!dir.exists(), "the temporary data dir was left behind");
}

#[tokio::test]
async fn a_node_in_a_given_dir_keeps_it_and_a_second_node_there_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let first = HostProcess::start(dir.path(), &[]);
    let err = HostProcess::start_on(dir.path(), reef_testkit::free_port(), &[])
        .expect_err("a second node on one data dir");
    assert!(err.contains("is in use by another node"), "{err}");
    let mut first = first;
    first.kill().unwrap();
    assert!(first.wait_exit(Duration::from_secs(5)).is_some());
    drop(first);
    assert!(
        dir.path().join("token").is_file(),
        "a given data dir is kept"
    );
}

#[test]
fn a_missing_binary_is_a_spawn_error() {
    let err = Launch::head()
        .binary("/nonexistent/host")
        .start()
        .unwrap_err();
    assert!(matches!(err, LaunchError::Spawn { .. }), "{err}");
    assert!(err.to_string().contains("REEF_HOST"), "{err}");
}

#[tokio::test]
async fn three_nodes_see_each_other_and_workers_use_the_head_token() {
    let c = cluster3::cluster3().await;
    assert_eq!(c.a.token_file, c.head.token_file);
    assert_eq!(c.a.token(), c.head.token());
    let nodes = cluster3::node_ids(&c.b.connect().await).await;
    assert_eq!(nodes.len(), 3);
    for node in [&c.head, &c.a, &c.b] {
        cluster3::id_of(&nodes, node);
    }
}
