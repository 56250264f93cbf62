//! Grants: a component importing filesystem or network interfaces registers
//! only when its registration grants them; the refusal lists every denied
//! import; grants are part of the module's identity (its hash).

use std::time::{Duration, Instant};

use reef::{ErrorCode, Grant, ModuleOptions, Strategy};
use reef_testkit::{guest, node, HostProcess};

fn grants(list: &[Grant]) -> ModuleOptions {
    list.iter()
        .fold(ModuleOptions::default(), |o, g| o.grant(*g))
}

/// A component importing `imports` (as empty instances) and exporting a
/// `guest` interface with only `describe`: enough to reach the import check.
fn component_importing(imports: &[&str]) -> Vec<u8> {
    let imports: String = imports
        .iter()
        .map(|n| format!("(import \"{n}\" (instance))\n"))
        .collect();
    wat::parse_str(format!(
        r#"(component
            {imports}
            (core module $m (func (export "f")))
            (core instance $i (instantiate $m))
            (func $f (canon lift (core func $i "f")))
            (instance $guest (export "describe" (func $f)))
            (export "reef:runtime/guest@0.2.0" (instance $guest)))"#
    ))
    .unwrap()
}

#[tokio::test]
async fn a_component_importing_the_filesystem_needs_the_filesystem_grant() {
    let cluster = node().await;
    let component = component_importing(&[
        "wasi:io/streams@0.2.0",
        "wasi:filesystem/types@0.2.0",
        "wasi:filesystem/preopens@0.2.0",
    ]);
    let err = cluster.register(component.clone()).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::NotGranted, "{err}");
    assert!(
        err.message.contains("wasi:filesystem/types@0.2.0")
            && err.message.contains("wasi:filesystem/preopens@0.2.0")
            && !err.message.contains("wasi:io/streams")
            && err.message.contains("--grant filesystem"),
        "{err}"
    );
    // Granting `network` does not help.
    let err = cluster
        .register_with(component.clone(), &grants(&[Grant::Network]))
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::NotGranted, "{err}");
    // With the grant the imports pass; this stub then fails on its exports.
    let err = cluster
        .register_with(component, &grants(&[Grant::Filesystem]))
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidModule, "{err}");
    assert!(err.message.contains("run-task"), "{err}");
}

#[tokio::test]
async fn a_component_importing_sockets_or_http_needs_the_network_grant() {
    let cluster = node().await;
    let component = component_importing(&[
        "wasi:sockets/tcp@0.2.0",
        "wasi:sockets/ip-name-lookup@0.2.0",
        "wasi:filesystem/types@0.2.0",
    ]);
    let err = cluster
        .register_with(component.clone(), &grants(&[Grant::Filesystem]))
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::NotGranted, "{err}");
    assert!(
        err.message.contains("wasi:sockets/tcp@0.2.0")
            && err.message.contains("wasi:sockets/ip-name-lookup@0.2.0")
            && !err.message.contains("wasi:filesystem/types")
            && err.message.contains("--grant network"),
        "{err}"
    );
    // Without any grant, both capabilities are named.
    let err = cluster.register(component.clone()).await.unwrap_err();
    assert!(
        err.message.contains("wasi:filesystem/types@0.2.0")
            && err.message.contains("filesystem and network"),
        "{err}"
    );
    let err = cluster
        .register_with(component, &grants(&[Grant::Filesystem, Grant::Network]))
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidModule, "{err}");
    // wasi:http is a network interface, but this node does not link it at all.
    let http = component_importing(&["wasi:http/outgoing-handler@0.2.0"]);
    let err = cluster.register(http.clone()).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::NotGranted, "{err}");
    assert!(
        err.message.contains("wasi:http/outgoing-handler@0.2.0"),
        "{err}"
    );
    let err = cluster
        .register_with(http, &grants(&[Grant::Network]))
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidModule, "{err}");
    assert!(err.message.contains("does not link wasi:http"), "{err}");
}

/// CPython imports wasi:filesystem and wasi:sockets: the nested example as
/// componentize-py builds it needs both grants, and then reaches its scratch
/// directory and the network (nothing else of the host's filesystem).
#[tokio::test]
async fn an_unstripped_python_guest_runs_with_both_grants_only() {
    let cluster = node().await;
    let wasm = std::fs::read(guest("python_nested_wasi")).unwrap();
    let err = cluster.register(wasm.clone()).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::NotGranted, "{err}");
    for import in [
        "wasi:filesystem/types@",
        "wasi:filesystem/preopens@",
        "wasi:sockets/tcp@",
        "wasi:sockets/udp@",
        "wasi:sockets/ip-name-lookup@",
    ] {
        assert!(err.message.contains(import), "{import} missing: {err}");
    }
    let err = cluster
        .register_with(wasm.clone(), &grants(&[Grant::Filesystem]))
        .await
        .unwrap_err();
    assert!(
        err.message.contains("wasi:sockets/tcp@") && !err.message.contains("wasi:filesystem"),
        "{err}"
    );
    let m = cluster
        .register_with(wasm, &grants(&[Grant::Filesystem, Grant::Network]))
        .await
        .unwrap();
    assert_eq!(m.grants, ["filesystem", "network"]);
    let r = cluster.task(&m, "sandbox_probe").submit().unwrap();
    assert_eq!(
        cluster.get::<String>(&r).await.unwrap(),
        "file=FileNotFoundError dir=FileNotFoundError scratch=allowed socket=allowed \
         lookup=allowed"
    );

    // A TCP round trip to a listener of this test.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let (mut conn, _) = listener.accept().unwrap();
        let mut text = String::new();
        conn.read_to_string(&mut text).unwrap();
        conn.write_all(text.to_uppercase().as_bytes()).unwrap();
    });
    let r = cluster
        .task(&m, "tcp_request")
        .arg(port as u64)
        .arg("hello from a granted guest")
        .submit()
        .unwrap();
    assert_eq!(
        cluster.get::<String>(&r).await.unwrap(),
        "HELLO FROM A GRANTED GUEST"
    );
    server.join().unwrap();
}

/// A core module is componentized with the preview-1 adapter its grants
/// allow: with `filesystem` it sees its scratch directory, without it no
/// directory at all. The two registrations are two modules.
#[tokio::test]
async fn the_filesystem_grant_gives_a_scratch_directory_and_another_hash() {
    let cluster = node().await;
    let wasm = std::fs::read(guest("bad")).unwrap();
    let plain = cluster.register(wasm.clone()).await.unwrap();
    let granted = cluster
        .register_with(wasm.clone(), &grants(&[Grant::Filesystem]))
        .await
        .unwrap();
    assert!(plain.grants.is_empty());
    assert_eq!(granted.grants, ["filesystem"]);
    assert_ne!(plain.hash, granted.hash, "grants must be part of the hash");
    // Registering again with the same grants is the same module.
    let again = cluster
        .register_with(wasm, &grants(&[Grant::Filesystem]))
        .await
        .unwrap();
    assert_eq!(again.hash, granted.hash);

    let probe = |m: &reef::Module| cluster.task(m, "scratch_probe").submit().unwrap();
    let (p, g) = (probe(&plain), probe(&granted));
    assert_eq!(cluster.get::<String>(&p).await.unwrap(), "scratch=denied");
    assert_eq!(
        cluster.get::<String>(&g).await.unwrap(),
        "scratch=ok (20 bytes)"
    );
    // Only the scratch directory: the rest of the host stays out of reach.
    let r = cluster.task(&granted, "sandbox_probe").submit().unwrap();
    assert_eq!(
        cluster.get::<String>(&r).await.unwrap(),
        "file=denied dir=denied env=denied args=denied net=denied"
    );
}

#[tokio::test]
async fn bytes_carrying_a_grants_section_are_refused_from_drivers() {
    let cluster = node().await;
    let core = wat::parse_str(r#"(module (@custom "reef:grants" "filesystem,network"))"#).unwrap();
    let err = cluster.register(core).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidModule, "{err}");
    assert!(err.message.contains("reef:grants"), "{err}");
}

/// Another node fetches the module's bytes from the control plane by hash:
/// the grants are sealed in them, so it runs the module with the same
/// grants, and a restarted node restores them from its cache.
#[tokio::test]
async fn grants_travel_with_the_module_to_other_nodes_and_across_restarts() {
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let common = ["--num-cpus", "2", "--object-store-memory", "128MiB"];
    let mut head_args = vec!["--heartbeat-ms", "200"];
    head_args.extend_from_slice(&common);
    let head = HostProcess::start(dirs[0].path(), &head_args);
    let worker = HostProcess::start_worker(dirs[1].path(), &head, &common);
    let driver = head.connect().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let worker_id = loop {
        let nodes = driver.status().await.unwrap().nodes;
        let alive = nodes.iter().filter(|n| n.state == "alive").count();
        if let Some(w) = nodes.iter().find(|n| n.address == worker.address) {
            if alive == 2 {
                break w.node_id.clone();
            }
        }
        assert!(Instant::now() < deadline, "the worker never joined");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let wasm = std::fs::read(guest("bad")).unwrap();
    let plain = driver.register(wasm.clone()).await.unwrap();
    let granted = driver
        .register_with(wasm, &grants(&[Grant::Filesystem]))
        .await
        .unwrap();
    let on_worker = Strategy::NodeAffinity {
        node_id: worker_id,
        soft: false,
    };
    let probe = |m: &reef::Module| {
        driver
            .task(m, "scratch_probe")
            .strategy(on_worker.clone())
            .submit()
            .unwrap()
    };
    let (p, g) = (probe(&plain), probe(&granted));
    assert_eq!(driver.get::<String>(&p).await.unwrap(), "scratch=denied");
    assert_eq!(
        driver.get::<String>(&g).await.unwrap(),
        "scratch=ok (20 bytes)"
    );
    let file = worker
        .dir
        .join("scratch")
        .join(&granted.hash)
        // Each tenant running the module has its own directory.
        .join("default")
        .join("probe.txt");
    assert!(file.exists(), "{} is missing", file.display());

    // The CLI grants too, and says so.
    let path = guest("bad");
    let out = head.cli(&["register", path.to_str().unwrap(), "--grant", "filesystem"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.starts_with(&granted.hash), "{text}");
    assert!(text.contains("grants: filesystem"), "{text}");

    // After a restart the module is loaded from the node's cache with its grants.
    drop(driver);
    drop(worker);
    head.admin_cli(&["stop"]);
    drop(head);
    let head = HostProcess::start(dirs[0].path(), &common);
    let driver = head.connect().await;
    let g = driver.task(&granted, "scratch_probe").submit().unwrap();
    let p = driver.task(&plain, "scratch_probe").submit().unwrap();
    assert_eq!(
        driver.get::<String>(&g).await.unwrap(),
        "scratch=ok (20 bytes)"
    );
    assert_eq!(driver.get::<String>(&p).await.unwrap(), "scratch=denied");
}
