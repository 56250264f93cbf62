//! Every view scoped to the caller's tenant, against a head and a worker
//! (real `host` processes): two tenants each run a task and an actor; each
//! one's listings (driver and `host list`), `host status` and `host get`
//! show only its own work, a foreign id answers exactly like a made-up one
//! (`get` and `logs`), and the admin sees both.

use std::process::Output;

use reef::{ListOptions, Strategy};
use reef_testkit::cluster3::{id_of, node_ids};
use reef_testkit::{guest, HostProcess};

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
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let head = HostProcess::start(dirs[0].path(), &[]);
    let worker = HostProcess::start_worker(dirs[1].path(), &head, &[]);
    let token_a = head.add_tenant("team-a", dirs[2].path(), &[]);
    let token_b = head.add_tenant("team-b", dirs[2].path(), &[]);
    let a = head.connect_as(&token_a).await;
    let b = worker.connect_as(&token_b).await;
    let nodes = node_ids(&a).await;
    let (head_id, worker_id) = (id_of(&nodes, &head), id_of(&nodes, &worker));

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
    let b_on_head = head.connect_as(&token_b).await;
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
    let cli_a = |args: &[&str]| head.cli_with(args, &token_a);
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
    let refused = refusal(worker.cli_with(&["logs", &foreign], &token_a), &foreign);
    assert_eq!(refused, refusal(cli_a(&["logs", &made_up]), &made_up));
    // Its own logs, held by the other node, A reads.
    let out = worker.cli_with(&["logs", &hex(task_a.id())], &token_a);
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
    let out = worker.cli_with(&["logs", &ended, "--actor"], &token_a);
    assert!(
        out.status.success() && text(&out).contains("talker ready"),
        "{}",
        text(&out)
    );
    let refused = refusal(
        worker.cli_with(&["logs", &ended, "--actor"], &token_b),
        &ended,
    );
    assert_eq!(
        refused,
        refusal(cli_a(&["logs", &made_up, "--actor"]), &made_up)
    );
}
