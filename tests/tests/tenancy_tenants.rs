//! Tenants through `host tenant add|list|remove` against real nodes: a
//! tenant's drivers connect with the token file `add` wrote, a revoked
//! tenant's open session ends and its token is refused, and tenants outlive
//! a restart of the head.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use reef::{Cluster, ConnectOptions, ErrorCode};
use reef_testkit::{guest, HostProcess};

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `host tenant add NAME` as the admin; the token file it printed.
fn add_tenant(node: &HostProcess, name: &str, dir: &Path) -> PathBuf {
    let output = dir.join(format!("{name}.token"));
    let out = node.admin_cli(&["tenant", "add", name, "--output", output.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let printed = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    assert_eq!(
        std::fs::canonicalize(&printed).unwrap(),
        std::fs::canonicalize(&output).unwrap()
    );
    let mode = std::fs::metadata(&printed).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the token file is mode {mode:o}");
    printed
}

fn tenant_names(node: &HostProcess) -> Vec<String> {
    let out = node.admin_cli(&["tenant", "list", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            v["name"].as_str().unwrap().to_string()
        })
        .collect()
}

async fn connect_as(node: &HostProcess, token_file: &Path) -> reef::Result<Cluster> {
    let options = ConnectOptions::default().token_file(token_file)?;
    Cluster::connect_with(&node.address, options).await
}

/// 1 + 2 through `cluster` (registering the demo guest).
async fn add_one_two(cluster: &Cluster) -> reef::Result<f64> {
    let m = cluster.register_file(guest("demo")).await?;
    add_in_session(cluster, &m).await
}

/// 1 + 2 through `cluster`'s session only (no unary call).
async fn add_in_session(cluster: &Cluster, m: &reef::Module) -> reef::Result<f64> {
    let sum = cluster.task(m, "add").arg(1.0).arg(2.0).submit()?;
    cluster.get::<f64>(&sum).await
}

#[tokio::test]
async fn a_tenant_is_added_used_and_revoked_through_the_cli() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let head = HostProcess::start(dirs[0].path(), &[]);
    let worker = HostProcess::start_worker(dirs[1].path(), &head, &[]);
    let team = add_tenant(&head, "team-a", dirs[2].path());
    assert_eq!(tenant_names(&head), ["default", "team-a"]);
    // Asked of the worker, the same list (it asks the control plane).
    let out = worker.admin_cli(&["tenant", "list"]);
    assert!(text(&out).contains("team-a"), "{}", text(&out));
    // A name is taken once; a bad one is refused before anything is made.
    let again = dirs[2].path().join("again.token");
    let out = head.admin_cli(&[
        "tenant",
        "add",
        "team-a",
        "--output",
        again.to_str().unwrap(),
    ]);
    assert!(
        !out.status.success() && text(&out).contains("NAME_TAKEN"),
        "{}",
        text(&out)
    );
    assert!(!again.exists(), "a refused add left its token file");
    let out = head.admin_cli(&["tenant", "add", "Team/A"]);
    assert!(
        !out.status.success() && text(&out).contains("not allowed"),
        "{}",
        text(&out)
    );
    // Managing tenants takes the admin credential.
    let out = head.cli(&["tenant", "list"]);
    assert!(
        !out.status.success() && text(&out).contains("PERMISSION_DENIED"),
        "{}",
        text(&out)
    );

    // The tenant's driver works on the worker (which learns the tenant from
    // the control plane) and on the head.
    let on_worker = connect_as(&worker, &team).await.unwrap();
    let m = on_worker.register_file(guest("demo")).await.unwrap();
    assert_eq!(add_in_session(&on_worker, &m).await.unwrap(), 3.0);
    let on_head = connect_as(&head, &team).await.unwrap();
    assert_eq!(add_in_session(&on_head, &m).await.unwrap(), 3.0);
    let default = head.connect().await;
    assert_eq!(add_one_two(&default).await.unwrap(), 3.0);

    // Revoked: the open sessions end with PERMISSION_DENIED, new ones are refused.
    let out = head.admin_cli(&["tenant", "remove", "team-a"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(tenant_names(&head), ["default"]);
    for cluster in [&on_worker, &on_head] {
        let deadline = Instant::now() + Duration::from_secs(10);
        let err = loop {
            match add_in_session(cluster, &m).await {
                Err(e) => break e,
                Ok(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await
                }
                Ok(_) => panic!("a revoked tenant's session still works"),
            }
        };
        assert_eq!(err.code, ErrorCode::PermissionDenied, "{err}");
        assert!(err.message.contains("team-a"), "{err}");
    }
    for node in [&worker, &head] {
        let err = connect_as(node, &team)
            .await
            .err()
            .expect("a revoked token connected");
        assert_eq!(err.code, ErrorCode::Unauthenticated, "{err}");
    }
    // Removing it again says there is no such tenant.
    let out = head.admin_cli(&["tenant", "remove", "team-a"]);
    assert!(
        !out.status.success() && text(&out).contains("no tenant"),
        "{}",
        text(&out)
    );
    // The default tenant's session was not touched.
    assert_eq!(add_one_two(&default).await.unwrap(), 3.0);
}

#[tokio::test]
async fn tenants_survive_a_restart_of_the_head() {
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let port = reef_testkit::free_port();
    let head = HostProcess::start_on(dirs[0].path(), port, &[]).unwrap();
    let team = add_tenant(&head, "team-b", dirs[1].path());
    let admin = head.admin_token();
    let out = head.admin_cli(&["stop"]);
    assert!(out.status.success(), "{}", text(&out));
    drop(head);

    let head = HostProcess::start_on(dirs[0].path(), port, &[]).unwrap();
    assert_eq!(head.admin_token(), admin, "the admin credential changed");
    assert_eq!(tenant_names(&head), ["default", "team-b"]);
    let cluster = connect_as(&head, &team).await.unwrap();
    assert_eq!(add_one_two(&cluster).await.unwrap(), 3.0);
    assert_eq!(add_one_two(&head.connect().await).await.unwrap(), 3.0);
}
