//! A cluster over TLS (`host start --tls-cert --tls-key --tls-ca`, the
//! certificates from `host tls init`): a head and a worker run tasks on
//! each other's objects (raw pulls over TLS both ways), a remote driver
//! trusting the CA puts and gets large objects (raw pushes and pulls over
//! TLS), and clients without the CA, or with another one, are refused.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use reef::{Cluster, ConnectOptions, Strategy};
use reef_testkit::cluster3::{id_of, node_ids};
use reef_testkit::{free_port, guest, host_bin, HostProcess};

/// `host tls init DIR`: the CA, certificate and key, all mode 0600.
fn tls_init(dir: &Path) {
    let out = Command::new(host_bin())
        .args(["tls", "init"])
        .arg(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    for name in ["ca.pem", "cert.pem", "key.pem"] {
        let mode = std::fs::metadata(dir.join(name))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{name} is mode {mode:o}");
    }
    // A second init never replaces the files.
    let again = Command::new(host_bin())
        .args(["tls", "init"])
        .arg(dir)
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("not replaced"),
        "{again:?}"
    );
}

fn tls_args(dir: &Path) -> Vec<String> {
    let path = |name: &str| dir.join(name).display().to_string();
    vec![
        "--tls-cert".into(),
        path("cert.pem"),
        "--tls-key".into(),
        path("key.pem"),
        "--tls-ca".into(),
        path("ca.pem"),
        "--num-cpus".into(),
        "2".into(),
    ]
}

/// A remote driver (no same-machine path: objects stream over the port).
async fn driver(node: &HostProcess, ca: Option<&Path>) -> reef::Result<Cluster> {
    let mut options = ConnectOptions::default()
        .token(&node.token())
        .same_machine(false);
    if let Some(ca) = ca {
        options = options.tls_ca(ca)?;
    }
    Cluster::connect_with(&node.address, options).await
}

struct TlsCluster {
    head: HostProcess,
    worker: HostProcess,
    ca: PathBuf,
    _dirs: Vec<tempfile::TempDir>,
}

/// `GET path` over HTTPS (HTTP/1.1) to `port`, trusting `ca`: the status
/// line and the body.
async fn https_get(port: u16, ca: &Path, path: &str, token: &str) -> std::io::Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut roots = rustls::RootCertStore::empty();
    for cert in reef_core::tls::read_certs(ca).unwrap() {
        roots.add(cert).unwrap();
    }
    let mut config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let mut tls = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
        .connect(name, tcp)
        .await?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\
         Connection: close\r\n\r\n"
    );
    tls.write_all(request.as_bytes()).await?;
    let mut reply = Vec::new();
    let _ = tls.read_to_end(&mut reply).await;
    Ok(String::from_utf8_lossy(&reply).into_owned())
}

/// Plain HTTP/1.1 to `port`: what comes back, if anything.
async fn http_get(port: u16, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(mut tcp) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
        return String::new();
    };
    let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    let _ = tcp.write_all(request.as_bytes()).await;
    let mut reply = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut reply)).await;
    String::from_utf8_lossy(&reply).into_owned()
}

#[tokio::test]
async fn metrics_and_the_dashboard_serve_https_only() {
    let certs = tempfile::tempdir().unwrap();
    tls_init(certs.path());
    let ca = certs.path().join("ca.pem");
    let (metrics, dashboard) = (free_port(), free_port());
    let mut args = tls_args(certs.path());
    args.extend([
        "--metrics-port".into(),
        metrics.to_string(),
        "--dashboard-port".into(),
        dashboard.to_string(),
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let dir = tempfile::tempdir().unwrap();
    let head = HostProcess::start(dir.path(), &args);
    assert!(
        head.log()
            .contains(&format!("metrics at https://127.0.0.1:{metrics}/metrics")),
        "{}",
        head.log()
    );
    let scrape = https_get(metrics, &ca, "/metrics", &head.admin_token())
        .await
        .unwrap();
    assert!(scrape.starts_with("HTTP/1.1 200"), "{scrape}");
    assert!(scrape.contains("reef_"), "{scrape}");
    let page = https_get(dashboard, &ca, "/api/overview", &head.token())
        .await
        .unwrap();
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    // Plain HTTP gets no answer from either.
    for port in [metrics, dashboard] {
        let reply = http_get(port, "/metrics").await;
        assert!(!reply.contains("HTTP/1.1"), "plain HTTP answered: {reply}");
    }
    // A client trusting another CA fails the handshake.
    let other = tempfile::tempdir().unwrap();
    tls_init(other.path());
    let err = https_get(
        metrics,
        &other.path().join("ca.pem"),
        "/metrics",
        &head.token(),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("certificate"), "{err}");
}

async fn tls_cluster() -> TlsCluster {
    let certs = tempfile::tempdir().unwrap();
    tls_init(certs.path());
    let args = tls_args(certs.path());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (d0, d1) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let head = HostProcess::start(d0.path(), &args);
    let worker = HostProcess::start_worker(d1.path(), &head, &args);
    let ca = certs.path().join("ca.pem");
    let driver = driver(&head, Some(&ca)).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let nodes = node_ids(&driver).await;
        if nodes.len() == 2 && nodes.iter().all(|(_, _, s)| s == "alive") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the worker never joined: {nodes:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    TlsCluster {
        head,
        worker,
        ca,
        _dirs: vec![certs, d0, d1],
    }
}

#[tokio::test]
async fn a_head_and_a_worker_run_tasks_and_move_objects_over_tls() {
    let c = tls_cluster().await;
    let driver = driver(&c.head, Some(&c.ca)).await.unwrap();
    let m = driver.register_file(guest("dag")).await.unwrap();
    let nodes = node_ids(&driver).await;
    let on = |node: &HostProcess| Strategy::NodeAffinity {
        node_id: id_of(&nodes, node),
        soft: false,
    };
    let n = 1_000_000u64;
    let base = (n - 1) as f64 * n as f64 / 2.0;
    // Made on the worker (8 MB, in its arena), summed on the head: the head
    // pulls it from the worker.
    let xs = driver
        .task(&m, "make_range")
        .arg(n)
        .strategy(on(&c.worker))
        .submit()
        .unwrap();
    let sum = driver
        .task(&m, "sum")
        .arg(&xs)
        .strategy(on(&c.head))
        .submit()
        .unwrap();
    assert_eq!(driver.get::<f64>(&sum).await.unwrap(), base);
    // Put by the driver (streamed to the head), scaled on the worker (it
    // pulls from the head), read back by the driver.
    let ys: Vec<f64> = (0..n).map(|i| i as f64).collect();
    let put = driver.put_f64s(&ys).await.unwrap();
    let scaled = driver
        .task(&m, "scale")
        .arg(&put)
        .arg(2.0f64)
        .strategy(on(&c.worker))
        .submit()
        .unwrap();
    let total = driver
        .task(&m, "sum")
        .arg(&scaled)
        .strategy(on(&c.worker))
        .submit()
        .unwrap();
    assert_eq!(driver.get::<f64>(&total).await.unwrap(), 2.0 * base);
    let back = driver.get_bytes(&xs).await.unwrap();
    assert_eq!(back.len() as u64, 8 * n);
    let bytes: &[u8] = &back;
    assert_eq!(&bytes[8..16], &1.0f64.to_le_bytes());

    // A driver of the worker too: a range made on the head, summed there.
    let on_worker = driver_of_worker(&c).await;
    let small = on_worker
        .task(&m, "make_range")
        .arg(1000u64)
        .strategy(on(&c.head))
        .submit()
        .unwrap();
    let small_sum = on_worker.task(&m, "sum").arg(&small).submit().unwrap();
    assert_eq!(on_worker.get::<f64>(&small_sum).await.unwrap(), 499_500.0);
    let out = c.head.cli(&["status", "--tls-ca", c.ca.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&c.worker.address), "{text}");
}

async fn driver_of_worker(c: &TlsCluster) -> Cluster {
    let options = ConnectOptions::default()
        .token(&c.head.token())
        .same_machine(false)
        .tls_ca(&c.ca)
        .unwrap();
    Cluster::connect_with(&c.worker.address, options)
        .await
        .unwrap()
}

#[tokio::test]
async fn clients_without_the_cluster_ca_are_refused() {
    let c = tls_cluster().await;
    // Plain TCP to a TLS port.
    let err = driver(&c.head, None)
        .await
        .err()
        .expect("plain TCP was accepted");
    assert!(err.message.contains("TLS"), "{err}");
    let out = c.head.cli(&["status"]);
    assert!(!out.status.success(), "{out:?}");
    // Another CA: the node's certificate does not chain to it.
    let other = tempfile::tempdir().unwrap();
    tls_init(other.path());
    let err = driver(&c.head, Some(&other.path().join("ca.pem")))
        .await
        .err()
        .expect("a client trusting another CA was accepted");
    assert!(err.message.contains("certificate"), "{err}");
    // A CA file that is not one is a bad argument, named.
    let not_pem = other.path().join("key.pem");
    let err = ConnectOptions::default().tls_ca(&not_pem).err().unwrap();
    assert_eq!(err.code, reef::ErrorCode::BadArgument);
    assert!(err.message.contains("key.pem"), "{err}");
    // The cluster still serves a client with the right CA.
    driver(&c.head, Some(&c.ca)).await.unwrap();
}
