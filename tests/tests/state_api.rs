//! The state API (`host list|get|summary`, the drivers' `list_*`) and logs
//! (`host logs`, `logs`) across a 3-node cluster of real `host` processes,
//! and the node's bounds on guests' logs.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use reef::{ErrorCode, ListOptions, Strategy, SummaryKind};
use reef_testkit::cluster3::{cluster3, id_of, node_ids};
use reef_testkit::{guest, host_bin, HostProcess};

fn on(node_id: &str) -> Strategy {
    Strategy::NodeAffinity {
        node_id: node_id.to_string(),
        soft: false,
    }
}

fn hex(id: u64) -> String {
    format!("{id:#x}")
}

#[tokio::test]
async fn list_get_and_summary_see_the_whole_cluster_from_any_node() {
    let c = cluster3().await;
    let head = c.head.connect().await;
    let b = c.b.connect().await;
    let nodes = node_ids(&head).await;
    let (head_id, a_id) = (id_of(&nodes, &c.head), id_of(&nodes, &c.a));
    let bad = head.register_file(guest("bad")).await.unwrap();

    // Submitted on the head, run on a; and submitted on b, run on the head.
    let on_a = head
        .task(&bad, "print")
        .strategy(on(&a_id))
        .submit()
        .unwrap();
    let failed = head
        .task(&bad, "fail")
        .arg("no luck")
        .strategy(on(&a_id))
        .submit()
        .unwrap();
    let on_head = b
        .task(&bad, "print")
        .strategy(on(&head_id))
        .submit()
        .unwrap();
    head.get_bytes(&on_a).await.unwrap();
    assert!(head.get_bytes(&failed).await.is_err());
    b.get_bytes(&on_head).await.unwrap();

    let seen = head.get_task_info(on_a.id()).await.unwrap();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].node_id, a_id);
    assert_eq!(seen[0].state, "finished");
    assert_eq!(seen[0].function, "print");
    let seen =
        c.a.connect()
            .await
            .get_task_info(on_head.id())
            .await
            .unwrap();
    assert_eq!(seen[0].node_id, head_id, "{seen:?}");
    let failed_rows = b.get_task_info(failed.id()).await.unwrap();
    let last = failed_rows.last().unwrap();
    assert_eq!(last.state, "failed", "{failed_rows:?}");
    assert_eq!(last.error_code, "GUEST_ERROR");
    assert!(last.error_message.contains("no luck"), "{last:?}");

    // Filters and limits.
    let prints = b
        .list_tasks(&ListOptions::new().filter("function", "print"))
        .await
        .unwrap();
    assert_eq!(prints.total, 2, "{prints:?}");
    assert!(prints.missing_nodes.is_empty(), "{prints:?}");
    let one = b
        .list_tasks(&ListOptions::new().filter("function", "print").limit(1))
        .await
        .unwrap();
    assert_eq!((one.rows.len(), one.total), (1, 2));
    let on_a_only = head
        .list_tasks(
            &ListOptions::new()
                .filter("node_id", a_id.clone())
                .filter("state", "failed"),
        )
        .await
        .unwrap();
    assert_eq!(on_a_only.total, 1, "{on_a_only:?}");
    assert_eq!(on_a_only.rows[0].task_id, failed.id());

    // Actors, objects, nodes, modules, jobs.
    let talker = head
        .actor(&bad, "Talker")
        .strategy(on(&a_id))
        .create()
        .await
        .unwrap();
    talker.call("say").arg("hi").submit().unwrap();
    let said = talker.call("say").arg("again").submit().unwrap();
    head.get_bytes(&said).await.unwrap();
    let actor = b.get_actor_info(talker.id()).await.unwrap();
    assert_eq!(
        (actor.class.as_str(), actor.node_id.as_str()),
        ("Talker", a_id.as_str())
    );
    assert_eq!(actor.state, "alive");
    let stored = head.put(&vec![7u8; 1000]).await.unwrap();
    let copies =
        c.a.connect()
            .await
            .get_object_info(stored.id())
            .await
            .unwrap();
    assert_eq!(copies[0].node_id, head_id, "{copies:?}");
    assert_eq!(copies[0].state, "ready");
    assert_eq!(
        b.list_nodes(&ListOptions::new()).await.unwrap().rows.len(),
        3
    );
    let modules = b.list_modules(&ListOptions::new()).await.unwrap();
    let row = modules
        .rows
        .iter()
        .find(|m| m.module.as_ref().unwrap().hash == bad.hash)
        .expect("the module is listed");
    assert!(
        row.node_ids.len() >= 2,
        "registered on the head, fetched by a: {row:?}"
    );
    assert!(b.list_jobs(&ListOptions::new()).await.unwrap().total >= 2);

    // Summaries count by function and state.
    let summary =
        c.a.connect()
            .await
            .summary(SummaryKind::Tasks)
            .await
            .unwrap();
    let print = summary
        .rows
        .iter()
        .find(|r| r.key.ends_with(" print"))
        .unwrap_or_else(|| panic!("{summary:?}"));
    assert_eq!(print.by_state.get("finished"), Some(&2), "{print:?}");
    let fail = summary
        .rows
        .iter()
        .find(|r| r.key.ends_with(" fail"))
        .unwrap();
    assert_eq!(fail.by_state.get("failed"), Some(&1), "{fail:?}");
    let actors = head.summary(SummaryKind::Actors).await.unwrap();
    assert!(
        actors
            .rows
            .iter()
            .any(|r| r.key.ends_with(" Talker") && r.total == 1),
        "{actors:?}"
    );

    // Clear errors: unknown ids and filter keys.
    let e = head.get_task_info(0xdead_beef).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::UnknownObject, "{e}");
    let e = head.get_actor_info(0xdead_beef).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::UnknownActor, "{e}");
    let e = head
        .list_tasks(&ListOptions::new().filter("colour", "red"))
        .await
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::BadArgument);
    assert!(
        e.message.contains("colour") && e.message.contains("function"),
        "{e}"
    );

    // The same through the command line, from another node.
    let out =
        c.b.cli(&["list", "tasks", "--filter", "function=print", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed["total"], 2, "{listed}");
    let out = c.b.cli(&["get", "task", &hex(on_a.id())]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains(&a_id), "{text}");
    let out = c.a.cli(&["summary", "tasks"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("print") && text.contains("finished 2"),
        "{text}"
    );
    let out = c.a.cli(&["list", "tasks", "--filter", "colour=red"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("unknown filter key"),
        "{err}"
    );
    let out = c.a.cli(&["get", "actor", "0xdeadbeef"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("UNKNOWN_ACTOR"),
        "{err}"
    );
}

#[tokio::test]
async fn a_forwarded_tasks_logs_are_read_from_the_node_it_was_submitted_to() {
    let c = cluster3().await;
    let head = c.head.connect().await;
    let a_id = id_of(&node_ids(&head).await, &c.a);
    let bad = head.register_file(guest("bad")).await.unwrap();
    let r = head
        .task(&bad, "print")
        .strategy(on(&a_id))
        .submit()
        .unwrap();
    head.get_bytes(&r).await.unwrap();
    assert!(
        c.a.dir.join("logs").read_dir().unwrap().count() > 0,
        "the log file is on the node that ran the task"
    );
    assert_eq!(c.head.dir.join("logs").read_dir().unwrap().count(), 0);
    let logs = head.logs(&r).await.unwrap();
    assert_eq!(logs.stdout, "hello stdout\n", "{logs:?}");
    assert_eq!(logs.stderr, "hello stderr\n", "{logs:?}");
    assert_eq!(logs.log, vec!["[info] hello log".to_string()]);
    // And from the third node, through the command line.
    let out = c.b.cli(&["logs", &hex(r.id())]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("hello stdout") && text.contains("hello log"),
        "{text}"
    );
    let out = c.b.cli(&["logs", "0xdeadbeef"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no logs"));
}

/// Lines printed by a child process, as they come.
fn lines_of(child: &mut std::process::Child) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

fn wait_for(lines: &mpsc::Receiver<String>, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) if line.contains(want) => return,
            Ok(_) => {}
            Err(e) => panic!("no line with `{want}`: {e}"),
        }
    }
}

#[tokio::test]
async fn following_an_actors_logs_sees_each_call_as_it_happens() {
    let c = cluster3().await;
    let head = c.head.connect().await;
    let b_id = id_of(&node_ids(&head).await, &c.b);
    let bad = head.register_file(guest("bad")).await.unwrap();
    let talker = head
        .actor(&bad, "Talker")
        .strategy(on(&b_id))
        .create()
        .await
        .unwrap();
    head.get_bytes(&talker.call("say").arg("first").submit().unwrap())
        .await
        .unwrap();
    // Followed from a node the actor does not live on.
    let mut follow = Command::new(host_bin())
        .args(["logs", &hex(talker.id()), "--actor", "--follow"])
        .args(["--address", &c.a.address])
        .arg("--token-file")
        .arg(&c.a.token_file)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = lines_of(&mut follow);
    wait_for(&lines, "talker ready");
    wait_for(&lines, "said first");
    for word in ["second", "third"] {
        // (Awaited here: `wait_for` blocks this test's runtime, which sends the call.)
        let said = talker.call("say").arg(word).submit().unwrap();
        head.get_bytes(&said).await.unwrap();
        let called = Instant::now();
        wait_for(&lines, &format!("said {word}"));
        assert!(called.elapsed() < Duration::from_secs(5));
    }
    // The stream ends when the actor does.
    talker.kill().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(status) = follow.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "--follow did not end with the actor"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success());
    // The driver's stream reads the same.
    use futures::StreamExt;
    let stream = head.log_stream(talker.id(), false).await.unwrap();
    let all: Vec<_> = stream.map(|l| l.unwrap().text).collect().await;
    assert!(all.iter().any(|l| l == "[info] third"), "{all:?}");
}

/// Resident anonymous memory of a process (not the shared arena).
fn rss_anon(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find(|l| l.starts_with("RssAnon:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap();
    kb << 10
}

fn dir_bytes(dir: &std::path::Path) -> u64 {
    dir.read_dir()
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum()
}

#[tokio::test]
async fn a_task_logging_far_past_the_caps_leaves_memory_and_the_log_dir_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let node = HostProcess::start(
        dir.path(),
        &[
            "--log-call-bytes",
            "1MiB",
            "--log-dir-bytes",
            "4MiB",
            "--num-cpus",
            "2",
        ],
    );
    let cluster = node.connect().await;
    let bad = cluster.register_file(guest("bad")).await.unwrap();
    let warm = cluster.task(&bad, "flood").arg(1u64).submit().unwrap();
    cluster.get_bytes(&warm).await.unwrap();
    let before = rss_anon(node.pid());
    // 3 × 128 MiB of output (half `log` lines, half stdout).
    let mut floods = Vec::new();
    for _ in 0..3 {
        floods.push(cluster.task(&bad, "flood").arg(64u64).submit().unwrap());
    }
    for f in &floods {
        assert_eq!(cluster.get::<u64>(f).await.unwrap(), 128 << 20);
    }
    let grown = rss_anon(node.pid()).saturating_sub(before);
    assert!(grown < 48 << 20, "the node grew by {grown} bytes");
    let logs_dir = node.dir.join("logs");
    let on_disk = dir_bytes(&logs_dir);
    assert!(on_disk <= 4 << 20, "{on_disk} bytes of logs");
    let last = cluster.logs(floods.last().unwrap()).await.unwrap();
    let kept = last.stdout.len() + last.log.iter().map(|l| l.len()).sum::<usize>();
    assert!(kept > 512 << 10 && kept <= 1 << 20, "{kept} bytes kept");
    assert!(
        last.log.last().unwrap().contains("bytes of output dropped"),
        "{:?}",
        last.log.last()
    );
    // Many small calls: the oldest files go, the directory stays under its cap.
    let mut small = Vec::new();
    for _ in 0..12 {
        small.push(cluster.task(&bad, "flood").arg(1u64).submit().unwrap());
    }
    for s in &small {
        cluster.get_bytes(s).await.unwrap();
    }
    assert!(dir_bytes(&logs_dir) <= 4 << 20);
    let first = cluster.logs(&floods[0]).await.unwrap();
    assert!(
        first.log.iter().any(|l| l.contains("deleted")),
        "{:?}",
        first.log
    );
    let newest = cluster.logs(small.last().unwrap()).await.unwrap();
    assert!(newest.stdout.len() > 100_000, "{}", newest.stdout.len());
}
