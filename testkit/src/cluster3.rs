//! A 3-node cluster of real `host` processes on 127.0.0.1: a head and two
//! workers, each with its own port, arena and data directory.

use std::time::{Duration, Instant};

use crate::HostProcess;

pub struct Cluster3 {
    pub head: HostProcess,
    pub a: HostProcess,
    pub b: HostProcess,
    _dirs: Vec<tempfile::TempDir>,
}

/// Node timeout of the test clusters (heartbeats every 200 ms).
pub const NODE_TIMEOUT: Duration = Duration::from_millis(2000);

/// A head and two workers, returned once every node's view shows all three.
pub async fn cluster3() -> Cluster3 {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let timeout = NODE_TIMEOUT.as_millis().to_string();
    let common = ["--num-cpus", "2", "--object-store-memory", "128MiB"];
    let mut head_args = vec![
        "--heartbeat-ms",
        "200",
        "--node-timeout-ms",
        timeout.as_str(),
    ];
    head_args.extend_from_slice(&common);
    let head = HostProcess::start(dirs[0].path(), &head_args);
    let a = HostProcess::start_worker(dirs[1].path(), &head, &common);
    let b = HostProcess::start_worker(dirs[2].path(), &head, &common);
    for node in [&head, &a, &b] {
        let driver = node.connect().await;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let nodes = node_ids(&driver).await;
            if nodes.len() == 3 && nodes.iter().all(|(_, _, s)| s == "alive") {
                break;
            }
            assert!(Instant::now() < deadline, "{} sees {nodes:?}", node.address);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    Cluster3 {
        head,
        a,
        b,
        _dirs: dirs,
    }
}

/// Node ids by address, as the answering node sees the cluster.
pub async fn node_ids(cluster: &reef::Cluster) -> Vec<(String, String, String)> {
    cluster
        .status()
        .await
        .unwrap()
        .nodes
        .into_iter()
        .map(|n| (n.address, n.node_id, n.state))
        .collect()
}

pub fn id_of(nodes: &[(String, String, String)], node: &HostProcess) -> String {
    nodes
        .iter()
        .find(|(address, _, _)| address == &node.address)
        .unwrap_or_else(|| panic!("{} is not in {nodes:?}", node.address))
        .1
        .clone()
}
