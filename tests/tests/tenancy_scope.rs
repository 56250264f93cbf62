//! Every view scoped to the caller's tenant, against a head and a worker
//! (real `host` processes): two tenants each run a task and an actor; each
//! one's listings (driver and `host list`), `host status` and `host get`
//! show only its own work, a foreign id answers exactly like a made-up one
//! (`get` and `logs`), and the admin sees both.

use std::process::Output;

use reef::{ListOptions, Strategy};
use reef_testkit::cluster3::{id_of, node_ids};
use reef_testkit::{guest, HostProcess, TwoTenants};

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn hex(id: u64) -> String {
    format!("{id:#x}")
}

fn on(node_id: &str) -> Strategy {
    Strategy::NodeAffinity {
        node_id: node_id.to_string(),
        soft: false,
    }
}

/// `host list KIND --json` with `args` after it: (id, tenant) of each row.
fn listed(out: Output, id_key: &str) -> Vec<(String, String)> {
    assert!(out.status.success(), "{}", text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r[id_key].as_str().unwrap().to_string(),
                r["tenant"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// A failed command's stderr with `id` written as `ID`.
fn refusal(out: Output, id: &str) -> String {
    assert!(!out.status.success(), "{}", text(&out));
    String::from_utf8_lossy(&out.stderr).replace(id, "ID")
}

#[tokio::test]
async fn each_tenant_sees_its_own_work_and_the_admin_all() {
    let tenants = TwoTenants::start();
    let (head, worker) = (&tenants.head, tenants.worker());
    let (token_a, token_b) = (&tenants.token_a, &tenants.token_b);
    let a = head.connect_as(token_a).await;
    let b = worker.connect_as(token_b).await;
    let nodes = node_ids(&a).await;
    let (head_id, worker_id) = (id_of(&nodes, head), id_of(&nodes, worker));

    // A's task runs on the worker, B's on the head: each tenant's rows and
    // logs are on the node it is not connected to. Both actors live on the head.
    let m_a = a.register_file(guest("bad")).await.unwrap();
    let m_b = b.register_file(guest("bad")).await.unwrap();
    let task_a = a
        .task(&m_a, "print")
        .strategy(on(&worker_id))
        .submit()
        .unwrap();
    let task_b = b
        .task(&m_b, "print")
        .strategy(on(&head_id))
        .submit()
        .unwrap();
    a.get_bytes(&task_a).await.unwrap();
    b.get_bytes(&task_b).await.unwrap();
    let actor_a = a
        .actor(&m_a, "Talker")
        .strategy(on(&head_id))
        .create()
        .await
        .unwrap();
    let actor_b = b
        .actor(&m_b, "Talker")
        .strategy(on(&head_id))
        .create()
        .await
        .unwrap();
    let said = actor_b.call("say").arg("hi").submit().unwrap();
    b.get_bytes(&said).await.unwrap();
    let said = actor_a.call("say").arg("hi").submit().unwrap();
    a.get_bytes(&said).await.unwrap();

    // The drivers' listings: their own rows only.
    for (driver, task, actor, tenant) in [
        (&a, task_a.id(), actor_a.id(), "team-a"),
        (&b, task_b.id(), actor_b.id(), "team-b"),
    ] {
        let tasks = driver.list_tasks(&ListOptions::new()).await.unwrap();
        assert!(tasks.missing_nodes.is_empty(), "{tasks:?}");
        let ids: Vec<u64> = tasks.rows.iter().map(|t| t.task_id).collect();
        assert_eq!(ids, [task], "{tenant}: {tasks:?}");
        assert!(tasks.rows.iter().all(|t| t.tenant == tenant), "{tasks:?}");
        let actors = driver.list_actors(&ListOptions::new()).await.unwrap();
        let ids: Vec<u64> = actors.rows.iter().map(|a| a.actor_id).collect();
        assert_eq!(ids, [actor], "{tenant}: {actors:?}");
        assert_eq!(actors.rows[0].tenant, tenant);
    }

    // `host status` on the head (where both actors live): each its own actor;
    // every node and its resources stay visible.
    let b_on_head = head.connect_as(token_b).await;
    for (driver, mine, theirs) in [
        (&a, actor_a.id(), actor_b.id()),
        (&b_on_head, actor_b.id(), actor_a.id()),
    ] {
        let status = driver.status().await.unwrap();
        let actors: Vec<u64> = status.actors.iter().map(|a| a.actor_id).collect();
        assert!(
            actors.contains(&mine) && !actors.contains(&theirs),
            "{actors:?}"
        );
        assert_eq!(status.nodes.len(), 2);
        assert!(status.nodes.iter().all(|n| !n.resources.is_empty()));
    }

    // `host list` on the command line; the default tenant sees neither.
    let cli_a = |args: &[&str]| head.cli_with(args, token_a);
    let rows = listed(cli_a(&["list", "tasks", "--json"]), "task_id");
    assert_eq!(rows, [(hex(task_a.id()), "team-a".to_string())]);
    let rows = listed(cli_a(&["list", "actors", "--json"]), "actor_id");
    assert_eq!(rows, [(hex(actor_a.id()), "team-a".to_string())]);
    let rows = listed(worker.cli(&["list", "tasks", "--json"]), "task_id");
    assert!(rows.is_empty(), "{rows:?}");

    // A foreign id answers exactly as a made-up one: `get` and `logs`.
    let made_up = hex(0x00ff_0000_0000_1234);
    let foreign = hex(task_b.id());
    assert_eq!(
        refusal(cli_a(&["get", "task", &foreign]), &foreign),
        refusal(cli_a(&["get", "task", &made_up]), &made_up),
    );
    let foreign_actor = hex(actor_b.id());
    assert_eq!(
        refusal(cli_a(&["get", "actor", &foreign_actor]), &foreign_actor),
        refusal(cli_a(&["get", "actor", &made_up]), &made_up),
    );
    let refused = refusal(cli_a(&["logs", &foreign]), &foreign);
    assert!(refused.contains("no logs"), "{refused}");
    assert_eq!(refused, refusal(cli_a(&["logs", &made_up]), &made_up));
    let refused = refusal(cli_a(&["logs", &foreign_actor, "--actor"]), &foreign_actor);
    assert_eq!(
        refused,
        refusal(cli_a(&["logs", &made_up, "--actor"]), &made_up)
    );
    // From the worker too (B's task log is on the head: asked of it, scoped).
    let refused = refusal(worker.cli_with(&["logs", &foreign], token_a), &foreign);
    assert_eq!(refused, refusal(cli_a(&["logs", &made_up]), &made_up));
    // Its own logs, held by the other node, A reads.
    let out = worker.cli_with(&["logs", &hex(task_a.id())], token_a);
    assert!(
        out.status.success() && text(&out).contains("hello stdout"),
        "{}",
        text(&out)
    );
    let logs = a.logs(&task_a).await.unwrap();
    assert_eq!(logs.stdout, "hello stdout\n", "{logs:?}");

    // The admin sees both tenants' rows, and filters by tenant.
    let rows = listed(head.admin_cli(&["list", "tasks", "--json"]), "task_id");
    let mut tenants: Vec<&str> = rows.iter().map(|(_, t)| t.as_str()).collect();
    tenants.sort();
    assert_eq!(tenants, ["team-a", "team-b"], "{rows:?}");
    let rows = listed(
        worker.admin_cli(&["list", "actors", "--filter", "tenant=team-b", "--json"]),
        "actor_id",
    );
    assert_eq!(rows, [(hex(actor_b.id()), "team-b".to_string())]);
    let out = head.admin_cli(&["get", "task", &foreign]);
    assert!(out.status.success(), "{}", text(&out));
    let out = worker.admin_cli(&["logs", &foreign]);
    assert!(
        out.status.success() && text(&out).contains("hello stdout"),
        "{}",
        text(&out)
    );

    // An ended actor's log stays its tenant's alone.
    actor_a.kill().await.unwrap();
    let ended = hex(actor_a.id());
    let out = worker.cli_with(&["logs", &ended, "--actor"], token_a);
    assert!(
        out.status.success() && text(&out).contains("talker ready"),
        "{}",
        text(&out)
    );
    let refused = refusal(
        worker.cli_with(&["logs", &ended, "--actor"], token_b),
        &ended,
    );
    assert_eq!(
        refused,
        refusal(cli_a(&["logs", &made_up, "--actor"]), &made_up)
    );
}

/// `host list modules --json` as `token`: the module hashes listed.
fn modules(node: &HostProcess, token: Option<&std::path::Path>) -> Vec<String> {
    let args = ["list", "modules", "--json"];
    let out = match token {
        Some(token) => node.cli_with(&args, token),
        None => node.admin_cli(&args),
    };
    assert!(out.status.success(), "{}", text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["hash"].as_str().unwrap().to_string())
        .collect()
}

/// `GET path` on the dashboard at 127.0.0.1:`port` with `token`: status and body.
fn dashboard_get(port: u16, path: &str, token: &str) -> (u16, serde_json::Value) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\
         Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).unwrap();
    let (head, body) = reply.split_once("\r\n\r\n").expect("an HTTP reply");
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, serde_json::from_str(body).unwrap_or_default())
}

/// The ids in a dashboard reply's rows under `key`.
fn dashboard_ids(body: &serde_json::Value, key: &str) -> Vec<String> {
    body["rows"]
        .as_array()
        .map(|rows| {
            rows.iter()
                .map(|r| r[key].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// Module listings show a tenant the modules it may run (its own and the
/// admin's), and the dashboard reads as the token that logged in.
#[tokio::test]
async fn module_listings_and_the_dashboard_are_scoped() {
    let port = reef_testkit::free_port();
    let tenants = TwoTenants::on_head(&["--dashboard-port", &port.to_string()]);
    let head = &tenants.head;
    let (token_a, token_b) = (&tenants.token_a, &tenants.token_b);
    let a = head.connect_as(token_a).await;
    let b = head.connect_as(token_b).await;
    let admin = reef::Cluster::connect_with_token(&head.address, &head.admin_token())
        .await
        .unwrap();
    let only_a = a.register_file(guest("bad")).await.unwrap();
    let only_b = b.register_file(guest("nested")).await.unwrap();
    let public = admin.register_file(guest("demo")).await.unwrap();

    let mut listed = modules(head, Some(token_a));
    listed.sort();
    let mut expected = vec![only_a.hash.clone(), public.hash.clone()];
    expected.sort();
    assert_eq!(listed, expected, "team-a's modules");
    let listed = modules(head, Some(token_b));
    assert!(
        listed.contains(&only_b.hash) && !listed.contains(&only_a.hash),
        "{listed:?}"
    );
    // The default tenant registered none: the public one only.
    assert_eq!(modules(head, None::<&std::path::Path>).len(), 3);
    let out = head.cli(&["list", "modules", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = v["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{v}");
    assert_eq!(rows[0]["hash"], public.hash.as_str());

    // The dashboard: each tenant's token its own tasks, the admin's all.
    let task_a = a.task(&only_a, "print").submit().unwrap();
    a.get_bytes(&task_a).await.unwrap();
    let task_b = b.task(&only_b, "add").arg(1.0).arg(2.0).submit().unwrap();
    b.get::<f64>(&task_b).await.unwrap();
    let read = |p: &std::path::Path| std::fs::read_to_string(p).unwrap().trim().to_string();
    let (status, body) = dashboard_get(port, "/api/tasks", &read(token_a));
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        dashboard_ids(&body, "task_id"),
        [hex(task_a.id())],
        "{body}"
    );
    let (_, body) = dashboard_get(port, "/api/tasks", &read(token_b));
    assert_eq!(
        dashboard_ids(&body, "task_id"),
        [hex(task_b.id())],
        "{body}"
    );
    let (_, body) = dashboard_get(port, "/api/tasks", &head.admin_token());
    let mut ids = dashboard_ids(&body, "task_id");
    ids.sort();
    let mut both = vec![hex(task_a.id()), hex(task_b.id())];
    both.sort();
    assert_eq!(ids, both, "{body}");
    // Tenant `default`'s token (the head's `token` file) sees neither.
    let (status, body) = dashboard_get(port, "/api/tasks", &head.token());
    assert_eq!(status, 200, "{body}");
    assert!(dashboard_ids(&body, "task_id").is_empty(), "{body}");
    // A foreign task's logs are refused as an unknown id's.
    let (status, _) = dashboard_get(
        port,
        &format!("/api/logs?id={}", hex(task_a.id())),
        &read(token_b),
    );
    assert_ne!(status, 200);
    let (status, body) = dashboard_get(port, "/api/tasks", "not-a-token");
    assert_eq!(status, 401, "{body}");
}

/// What the node remembers of finished work is kept per tenant: B's flood of
/// more tasks than the node keeps of one tenant (10,000) pushes none of A's
/// out. A still lists its finished task and reads its log (both were gone
/// when the node kept the last 10,000 tasks of all tenants together).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_tenants_flood_keeps_a_tenants_history_and_logs() {
    let tenants = TwoTenants::on_head(&[]);
    let a = tenants.head.connect_as(&tenants.token_a).await;
    let b = tenants.head.connect_as(&tenants.token_b).await;
    let m_a = a.register_file(guest("bad")).await.unwrap();
    let task_a = a.task(&m_a, "print").submit().unwrap();
    a.get_bytes(&task_a).await.unwrap();

    let m_b = b.register_file(guest("bad")).await.unwrap();
    let flood: Vec<_> = (0..21_000)
        .map(|_| b.task(&m_b, "print").submit().unwrap())
        .collect();
    b.get_many::<()>(&flood).await.unwrap();

    let tasks = a.list_tasks(&ListOptions::new()).await.unwrap();
    let ids: Vec<u64> = tasks.rows.iter().map(|t| t.task_id).collect();
    assert_eq!(ids, [task_a.id()], "{tasks:?}");
    let logs = a.logs(&task_a).await.unwrap();
    assert_eq!(logs.stdout, "hello stdout\n", "{logs:?}");
    let out = tenants
        .head
        .cli_with(&["logs", &hex(task_a.id())], &tenants.token_a);
    assert!(text(&out).contains("hello stdout"), "{}", text(&out));

    // B's own listing: its newest tasks, none of A's.
    let listed = b
        .list_tasks(&ListOptions::new().limit(10))
        .await
        .unwrap()
        .rows;
    assert_eq!(listed.len(), 10, "{listed:?}");
    assert!(listed.iter().all(|t| t.tenant == "team-b"), "{listed:?}");
}
