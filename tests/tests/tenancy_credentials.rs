//! The three kinds of credential against real `host` processes: what the
//! head writes, and which services each opens (called with the generated
//! tonic clients, as an attacker holding one token would).

use std::os::unix::fs::PermissionsExt;

use reef_core::ReefError;
use reef_proto as pb;
use reef_proto::auth::{AttachToken, TokenChannel};
use reef_testkit::HostProcess;
use tonic::transport::Channel;

async fn channel(node: &HostProcess) -> Channel {
    reef_core::channel::connect(&node.address).await.unwrap()
}

fn attach(token: &str) -> AttachToken {
    AttachToken::new(token).unwrap()
}

async fn node_client(node: &HostProcess, token: &str) -> pb::node_client::NodeClient<TokenChannel> {
    pb::node_client::NodeClient::with_interceptor(channel(node).await, attach(token))
}

async fn peer_client(node: &HostProcess, token: &str) -> pb::peer_client::PeerClient<TokenChannel> {
    pb::peer_client::PeerClient::with_interceptor(channel(node).await, attach(token))
}

async fn peer_state_client(
    node: &HostProcess,
    token: &str,
) -> pb::peer_state_client::PeerStateClient<TokenChannel> {
    pb::peer_state_client::PeerStateClient::with_interceptor(channel(node).await, attach(token))
}

async fn control_plane_client(
    node: &HostProcess,
    token: &str,
) -> pb::control_plane_client::ControlPlaneClient<TokenChannel> {
    pb::control_plane_client::ControlPlaneClient::with_interceptor(
        channel(node).await,
        attach(token),
    )
}

async fn tenants_client(
    node: &HostProcess,
    token: &str,
) -> pb::tenants_client::TenantsClient<TokenChannel> {
    pb::tenants_client::TenantsClient::with_interceptor(channel(node).await, attach(token))
}

/// Asserts a refusal: PERMISSION_DENIED, naming the method and the kind.
fn denied<T: std::fmt::Debug>(result: Result<T, tonic::Status>, method: &str, kind: &str) {
    let status = result.expect_err(&format!("{method} accepted a {kind} credential"));
    assert_eq!(status.code(), tonic::Code::PermissionDenied, "{status:?}");
    let e = ReefError::from(status);
    assert_eq!(e.code, pb::ErrorCode::PermissionDenied, "{e}");
    assert!(e.message.contains(method), "{e}");
    assert!(e.message.contains(&format!("a {kind} credential")), "{e}");
}

#[tokio::test]
async fn the_head_writes_three_distinct_private_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let head = HostProcess::start(dir.path(), &[]);
    let mut tokens = Vec::new();
    for name in ["token", "node-token", "admin-token"] {
        let path = dir.path().join(name);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{name} is mode {mode:o}");
        tokens.push(reef_proto::auth::read_token_file(&path).unwrap());
    }
    assert!(
        tokens[0] != tokens[1] && tokens[1] != tokens[2] && tokens[0] != tokens[2],
        "the credentials must differ"
    );
    assert_eq!(tokens[0], head.token());
    assert_eq!(tokens[1], head.node_token());
    assert_eq!(tokens[2], head.admin_token());
    // The directory and what else the node keeps there are the node user's only.
    for (name, want) in [("", 0o700), ("node.sock", 0o600), ("node.lock", 0o600)] {
        let mode = std::fs::metadata(dir.path().join(name))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, want, "{name:?} is mode {mode:o}");
    }
}

/// Random tokens are refused (each named a wrong token or a busy check),
/// and the node still serves the right one promptly afterwards.
#[tokio::test]
async fn a_flood_of_unknown_tokens_is_refused_and_the_node_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let head = HostProcess::start(dir.path(), &[]);
    let mut calls = Vec::new();
    let shared = channel(&head).await;
    for i in 0..200 {
        let token = format!("{i:064x}");
        let mut client =
            pb::node_client::NodeClient::with_interceptor(shared.clone(), attach(&token));
        calls.push(tokio::spawn(async move {
            client.status(pb::StatusRequest::default()).await
        }));
    }
    for call in calls {
        let status = call
            .await
            .unwrap()
            .expect_err("a random token was accepted");
        assert_eq!(status.code(), tonic::Code::Unauthenticated, "{status:?}");
    }
    let mut client = node_client(&head, &head.token()).await;
    client.status(pb::StatusRequest::default()).await.unwrap();
}

#[tokio::test]
async fn each_service_takes_only_its_kind_of_credential() {
    let dir = tempfile::tempdir().unwrap();
    let head = HostProcess::start(dir.path(), &[]);
    let (tenant, admin, node) = (head.token(), head.admin_token(), head.node_token());

    // Node-to-node services: a tenant's and the admin's tokens are refused.
    for (token, kind) in [(&tenant, "tenant"), (&admin, "admin")] {
        let mut peer = peer_client(&head, token).await;
        denied(
            peer.objects_ready(pb::ObjectsReadyBatch::default()).await,
            "/reef.v1.Peer/ObjectsReady",
            kind,
        );
        denied(
            peer.free(pb::FreeRequest { ids: vec![1 << 40] }).await,
            "/reef.v1.Peer/Free",
            kind,
        );
        // A forged "your actor ended" would free another tenant's quota place.
        denied(
            peer.actor_ended(pb::ActorEndedRequest {
                actor_id: 1 << 40,
                ..Default::default()
            })
            .await,
            "/reef.v1.Peer/ActorEnded",
            kind,
        );
        let mut state = peer_state_client(&head, token).await;
        denied(
            state.local_state(pb::ListRequest::default()).await,
            "/reef.v1.PeerState/LocalState",
            kind,
        );
        let mut control_plane = control_plane_client(&head, token).await;
        denied(
            control_plane
                .kv_put(pb::KvPutRequest {
                    ns: "x".into(),
                    key: "k".into(),
                    value: "v".into(),
                    overwrite: true,
                })
                .await,
            "/reef.v1.ControlPlane/KvPut",
            kind,
        );
        denied(
            control_plane
                .register_node(pb::RegisterNodeRequest::default())
                .await,
            "/reef.v1.ControlPlane/RegisterNode",
            kind,
        );
    }
    // ... and the node credential opens them.
    peer_client(&head, &node)
        .await
        .free(pb::FreeRequest { ids: vec![] })
        .await
        .unwrap();
    let jobs = control_plane_client(&head, &node)
        .await
        .list_jobs(pb::ListJobsRequest {})
        .await;
    assert!(jobs.is_ok(), "{jobs:?}");

    // The driver API: tenants and the admin, never the node credential.
    denied(
        node_client(&head, &node)
            .await
            .status(pb::StatusRequest {})
            .await,
        "/reef.v1.Node/Status",
        "node",
    );
    for token in [&tenant, &admin] {
        let status = node_client(&head, token)
            .await
            .status(pb::StatusRequest {})
            .await;
        assert!(status.is_ok(), "{status:?}");
    }
    // The Rust driver reports it typed.
    let err = reef::Cluster::connect_with_token(&head.address, &node)
        .await
        .err()
        .expect("a driver connected with the node credential");
    assert_eq!(err.code, pb::ErrorCode::PermissionDenied, "{err}");

    // Tenants and stopping a node: the admin only.
    for (token, kind) in [(&tenant, "tenant"), (&node, "node")] {
        denied(
            tenants_client(&head, token)
                .await
                .list(pb::ListTenantsRequest {})
                .await,
            "/reef.v1.Tenants/List",
            kind,
        );
        denied(
            node_client(&head, token)
                .await
                .stop(pb::StopRequest {})
                .await,
            "/reef.v1.Node/Stop",
            kind,
        );
    }
    let listed = tenants_client(&head, &admin)
        .await
        .list(pb::ListTenantsRequest {})
        .await
        .unwrap()
        .into_inner();
    let names: Vec<&str> = listed.tenants.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["default"]);

    // A token of no credential is unauthenticated, whatever the service.
    let status = peer_client(&head, "not-a-credential")
        .await
        .free(pb::FreeRequest { ids: vec![] })
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unauthenticated, "{status:?}");

    // The default tenant still works as before (the node is still up).
    let cluster = head.connect().await;
    let m = cluster
        .register_file(reef_testkit::guest("demo"))
        .await
        .unwrap();
    let sum = cluster.task(&m, "add").arg(1.0).arg(2.0).submit().unwrap();
    assert_eq!(cluster.get::<f64>(&sum).await.unwrap(), 3.0);
}

#[tokio::test]
async fn a_worker_refuses_tenant_credentials_on_its_peer_service() {
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let head = HostProcess::start(dirs[0].path(), &[]);
    let worker = HostProcess::start_worker(dirs[1].path(), &head, &[]);
    denied(
        peer_client(&worker, &worker.token())
            .await
            .free(pb::FreeRequest { ids: vec![] })
            .await,
        "/reef.v1.Peer/Free",
        "tenant",
    );
    denied(
        peer_client(&worker, &head.admin_token())
            .await
            .free(pb::FreeRequest { ids: vec![] })
            .await,
        "/reef.v1.Peer/Free",
        "admin",
    );
    // A worker knows the default tenant (from the view) and serves it.
    let cluster = worker.connect().await;
    let m = cluster
        .register_file(reef_testkit::guest("demo"))
        .await
        .unwrap();
    let sum = cluster.task(&m, "add").arg(2.0).arg(2.0).submit().unwrap();
    assert_eq!(cluster.get::<f64>(&sum).await.unwrap(), 4.0);
    // A node may not join with a tenant's token.
    let dir = tempfile::tempdir().unwrap();
    let err = HostProcess::spawn(
        dir.path(),
        reef_testkit::free_port(),
        false,
        &[
            "--address",
            &head.address,
            "--token-file",
            head.token_file.to_str().unwrap(),
        ],
    )
    .expect_err("a node joined with a tenant's token");
    assert!(err.contains("PERMISSION_DENIED"), "{err}");
}
