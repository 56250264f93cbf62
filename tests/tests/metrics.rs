//! `/metrics` of a real node: refused without the admin credential, parsed as
//! the Prometheus text format, and its values move as work runs.

use std::io::{Read, Write};
use std::net::TcpStream;

use prometheus_parse::{Sample, Scrape, Value};
use reef::ErrorCode;
use reef_testkit::{free_port, guest, HostProcess};

/// `GET /metrics` on 127.0.0.1:`port`: the status code and the body.
fn get(port: u16, token: Option<&str>) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connecting to /metrics");
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).unwrap();
    let (head, body) = reply.split_once("\r\n\r\n").expect("an HTTP reply");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status code");
    (status, body.to_string())
}

fn scrape(port: u16, token: &str) -> Vec<Sample> {
    let (status, body) = get(port, Some(token));
    assert_eq!(status, 200, "{body}");
    Scrape::parse(body.lines().map(|l| Ok(l.to_string())))
        .expect("the Prometheus text format")
        .samples
}

/// The value of the sample `name` whose labels include `labels` (panics
/// when there is none: a renamed or missing series must fail the test).
fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    let found: Vec<_> = samples
        .iter()
        .filter(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .collect();
    assert!(found.len() <= 1, "{name} {labels:?} matches {found:?}");
    match found.first().map(|s| &s.value) {
        None => panic!("no sample {name} {labels:?}"),
        Some(Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v)) => *v,
        Some(Value::Histogram(buckets)) => buckets
            .iter()
            .find(|b| b.less_than.is_infinite())
            .map_or(0.0, |b| b.count),
        Some(other) => panic!("{name}: unexpected {other:?}"),
    }
}

#[tokio::test]
async fn metrics_need_the_token_and_move_with_work() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let node = HostProcess::start(dir.path(), &["--metrics-port", &port.to_string()]);
    // The operator's credential reads the metrics; a tenant's is refused
    // (the series name every tenant's work).
    let token = node.admin_token();

    assert_eq!(get(port, None).0, 401);
    assert_eq!(get(port, Some("not-the-token")).0, 401);
    let (status, body) = get(port, Some(&node.token()));
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("admin-token"), "{body}");
    let before = scrape(port, &token);
    assert!(value(&before, "reef_node_memory_rss_bytes", &[]) > 0.0);
    assert!(value(&before, "reef_arena_capacity_bytes", &[]) >= (128u64 << 20) as f64);

    let cluster = node.connect().await;
    let demo = cluster.register_file(guest("demo")).await.unwrap();
    let bad = cluster.register_file(guest("bad")).await.unwrap();
    let sums: Vec<_> = (0..5)
        .map(|i| {
            cluster
                .task(&demo, "add")
                .arg(1.0)
                .arg(i as f64)
                .submit()
                .unwrap()
        })
        .collect();
    for (i, r) in sums.iter().enumerate() {
        assert_eq!(cluster.get::<f64>(r).await.unwrap(), 1.0 + i as f64);
    }
    let boom = cluster.task(&bad, "panic").submit().unwrap();
    let err = cluster.get::<()>(&boom).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::GuestPanic, "{err}");
    let acc = cluster.actor(&demo, "Accumulator").create().await.unwrap();
    let total = acc.call("add").arg(2.5).submit().unwrap();
    assert_eq!(cluster.get::<f64>(&total).await.unwrap(), 2.5);
    let xs = vec![1.0f64; 1 << 17]; // 1 MiB: above the inline threshold, in the arena
    let _put = cluster.put_f64s(&xs).await.unwrap();

    let after = scrape(port, &token);
    let add = [
        ("tenant", "default"),
        ("module", &demo.hash[..12]),
        ("function", "add"),
    ];
    assert_eq!(value(&after, "reef_tasks_submitted_total", &add), 5.0);
    assert_eq!(value(&after, "reef_tasks_finished_total", &add), 5.0);
    assert_eq!(value(&after, "reef_tasks_running", &add), 0.0);
    assert_eq!(value(&after, "reef_task_run_seconds", &add), 5.0);
    assert_eq!(
        value(&after, "reef_task_scheduling_delay_seconds", &add),
        5.0
    );
    let panic = [("module", &bad.hash[..12]), ("function", "panic")];
    assert_eq!(value(&after, "reef_tasks_submitted_total", &panic), 1.0);
    assert_eq!(value(&after, "reef_tasks_finished_total", &panic), 0.0);
    let failed = [panic[0], panic[1], ("code", "GUEST_PANIC")];
    assert_eq!(value(&after, "reef_tasks_failed_total", &failed), 1.0);
    assert!(value(&after, "reef_instance_starts_total", &[("kind", "task")]) >= 6.0);
    let add_call = [("class", "Accumulator"), ("method", "add")];
    assert_eq!(value(&after, "reef_actor_calls_total", &add_call), 1.0);
    assert_eq!(value(&after, "reef_actor_call_seconds", &add_call), 1.0);
    assert_eq!(value(&after, "reef_actors", &[("state", "alive")]), 1.0);
    let arena = |s: &[Sample]| value(s, "reef_arena_used_bytes", &[]);
    assert!(
        arena(&after) >= arena(&before) + (1 << 20) as f64,
        "arena use {} -> {}",
        arena(&before),
        arena(&after)
    );
    assert!(value(&after, "reef_objects", &[]) > value(&before, "reef_objects", &[]));
    let register = [("method", "/reef.v1.Node/RegisterModule"), ("code", "0")];
    assert_eq!(value(&after, "reef_rpc_requests_total", &register), 2.0);
    assert_eq!(
        value(&after, "reef_module_loads_total", &[("cache", "miss")])
            + value(&after, "reef_module_loads_total", &[("cache", "hit")]),
        2.0
    );
}

#[test]
fn the_default_port_is_the_node_port_plus_1000_and_0_turns_it_off() {
    let dir = tempfile::tempdir().unwrap();
    let node = HostProcess::start(dir.path(), &[]);
    assert_eq!(get(node.port + 1000, None).0, 401);

    let dir = tempfile::tempdir().unwrap();
    let off = HostProcess::start(dir.path(), &["--metrics-port", "0"]);
    assert!(TcpStream::connect(("127.0.0.1", off.port + 1000)).is_err());
}

#[test]
fn an_unauthenticated_metrics_port_is_an_opt_in() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let _node = HostProcess::start(
        dir.path(),
        &["--metrics-port", &port.to_string(), "--metrics-no-auth"],
    );
    let (status, body) = get(port, None);
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("# TYPE reef_tasks_submitted_total counter"),
        "{body}"
    );
}

#[tokio::test]
async fn no_metrics_serves_no_endpoint_and_runs_work() {
    let dir = tempfile::tempdir().unwrap();
    let node = HostProcess::start(dir.path(), &["--no-metrics"]);
    assert!(TcpStream::connect(("127.0.0.1", node.port + 1000)).is_err());
    let cluster = node.connect().await;
    let demo = cluster.register_file(guest("demo")).await.unwrap();
    let acc = cluster.actor(&demo, "Accumulator").create().await.unwrap();
    let sum = cluster
        .task(&demo, "add")
        .arg(1.0)
        .arg(2.0)
        .submit()
        .unwrap();
    let total = acc.call("add").arg(2.5).submit().unwrap();
    assert_eq!(cluster.get::<f64>(&sum).await.unwrap(), 3.0);
    assert_eq!(cluster.get::<f64>(&total).await.unwrap(), 2.5);

    // Metrics off with an endpoint asked for is a contradiction.
    let dir = tempfile::tempdir().unwrap();
    let both = HostProcess::start_on(
        dir.path(),
        free_port(),
        &["--no-metrics", "--metrics-port", "9"],
    );
    let log = both.expect_err("--no-metrics with --metrics-port started");
    assert!(log.contains("--metrics-port"), "{log}");
}

#[tokio::test]
async fn a_reused_instance_starts_no_instance_and_waits_in_the_warm_pool() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let node = HostProcess::start(dir.path(), &["--metrics-port", &port.to_string()]);
    let token = node.admin_token();
    let cluster = node.connect().await;
    let bad = cluster.register_file(guest("bad")).await.unwrap();
    let before = scrape(port, &token);
    let starts = |s: &[Sample]| value(s, "reef_instance_starts_total", &[("kind", "task")]);
    assert_eq!(value(&before, "reef_warm_instances", &[]), 0.0);
    for expected in 1..=4u64 {
        let r = cluster.task(&bad, "calls").max_calls(0).submit().unwrap();
        assert_eq!(cluster.get::<u64>(&r).await.unwrap(), expected);
    }
    let after = scrape(port, &token);
    // Four tasks, one instance, kept after the last.
    assert_eq!(starts(&after) - starts(&before), 1.0);
    assert_eq!(value(&after, "reef_warm_instances", &[]), 1.0);
    // A task with the default (a fresh instance) starts one and keeps none.
    let r = cluster.task(&bad, "calls").submit().unwrap();
    assert_eq!(cluster.get::<u64>(&r).await.unwrap(), 1);
    let last = scrape(port, &token);
    assert_eq!(starts(&last) - starts(&after), 1.0);
    assert_eq!(value(&last, "reef_warm_instances", &[]), 1.0);
}

/// A node with `--prestart-min-us prestart` and its metrics port.
fn node_prestarting(prestart: &str) -> (tempfile::TempDir, u16, HostProcess) {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let args = [
        "--metrics-port",
        &port.to_string(),
        "--prestart-min-us",
        prestart,
    ];
    let node = HostProcess::start(dir.path(), &args);
    (dir, port, node)
}

#[tokio::test]
async fn instances_made_ahead_are_fresh_and_wait_in_the_warm_pool() {
    // `--prestart-min-us 0`: every module's next fresh instance is made
    // ahead (by default only those slow to make, like CPython's).
    let (_dir, port, node) = node_prestarting("0");
    let token = node.admin_token();
    let cluster = node.connect().await;
    let bad = cluster.register_file(guest("bad")).await.unwrap();
    let starts = |s: &[Sample]| value(s, "reef_instance_starts_total", &[("kind", "task")]);
    let warm = |s: &[Sample]| value(s, "reef_warm_instances", &[]);
    let before = scrape(port, &token);
    // `calls` counts the calls its instance served: 1 in a fresh one, also
    // in one made ahead (it never ran a call).
    for _ in 0..6 {
        let r = cluster.task(&bad, "calls").submit().unwrap();
        assert_eq!(cluster.get::<u64>(&r).await.unwrap(), 1);
    }
    // What was made after the last calls waits for the next task (at most
    // two per module, tenant and limits); each task counted one instance
    // start, whoever made it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let after = loop {
        let s = scrape(port, &token);
        if warm(&s) >= 1.0 || std::time::Instant::now() > deadline {
            break s;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert!(
        (1.0..=2.0).contains(&warm(&after)),
        "{} instances made ahead",
        warm(&after)
    );
    assert_eq!(starts(&after) - starts(&before), 6.0);
    // Tasks that may reuse an instance never get one made ahead, nor keep
    // theirs under its key.
    for expected in 1..=2u64 {
        let r = cluster.task(&bad, "calls").max_calls(0).submit().unwrap();
        assert_eq!(cluster.get::<u64>(&r).await.unwrap(), expected);
    }
    let r = cluster.task(&bad, "calls").submit().unwrap();
    assert_eq!(cluster.get::<u64>(&r).await.unwrap(), 1);

    // `off`: none is made.
    let (_dir, port, node) = node_prestarting("off");
    let cluster = node.connect().await;
    let bad = cluster.register_file(guest("bad")).await.unwrap();
    for _ in 0..3 {
        let r = cluster.task(&bad, "calls").submit().unwrap();
        assert_eq!(cluster.get::<u64>(&r).await.unwrap(), 1);
    }
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(warm(&scrape(port, &node.admin_token())), 0.0);
}

/// The first wave of a DAG over a cluster: hundreds of tasks reach a node
/// that has not loaded their module yet. Each node fetches it from the
/// control plane once; before, every task fetched its own copy (290
/// fetches of the 147 KB module for these 300 tasks; a DAG's first run over
/// 3 nodes took 3x as long).
#[tokio::test]
async fn a_node_fetches_a_module_once_however_many_tasks_wait_for_it() {
    let c = reef_testkit::cluster3::cluster3().await;
    let driver = c.head.connect().await;
    let demo = driver.register_file(guest("demo")).await.unwrap();
    let sums: Vec<_> = (0..300)
        .map(|i| {
            driver
                .task(&demo, "add")
                .arg(i as f64)
                .arg(1.0)
                .strategy(reef::Strategy::Spread)
                .submit()
                .unwrap()
        })
        .collect();
    let got: Vec<f64> = driver.get_many(&sums).await.unwrap();
    assert_eq!(got, (0..300).map(|i| i as f64 + 1.0).collect::<Vec<_>>());
    // Spread: both workers ran some (each had to fetch the module).
    for worker in [&c.a, &c.b] {
        assert!(worker.has_module(), "{} ran nothing", worker.address);
    }
    let samples = scrape(c.head.port + 1000, &c.head.admin_token());
    let fetches = [("method", "/reef.v1.ControlPlane/GetModule"), ("code", "0")];
    assert_eq!(value(&samples, "reef_rpc_requests_total", &fetches), 2.0);
}
