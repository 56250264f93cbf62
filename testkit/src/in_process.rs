//! Nodes inside the test (or bench) process, without a gRPC server.

use std::path::Path;

use reef_host::node::NodeConfig;

const MIB: u64 = 1 << 20;

/// The configuration of a node run inside this process: no control plane, no
/// port, no token, everything it writes under `dir` (its arena in
/// `/dev/shm`), an `object_store`-byte arena, and resources ample enough that
/// no test or figure waits for them (16 CPUs, 16 GiB). Change fields for more.
pub fn node_config(dir: &Path, object_store: u64) -> NodeConfig {
    NodeConfig {
        head: false,
        port: 0,
        num_cpus: 16.0,
        memory: 16 << 30,
        custom_resources: Default::default(),
        object_store_memory: object_store,
        arena_dir: "/dev/shm".into(),
        spill_dir: dir.join("spill"),
        data_dir: dir.to_owned(),
        socket_path: dir.join("node.sock"),
        inline_threshold: 100 << 10,
        default_memory_limit: 256 * MIB,
        default_cpu_time_ms: 60_000,
        token: String::new(),
        head_address: None,
        advertise_host: "127.0.0.1".into(),
    }
}
