//! The dashboard under load, against a real head and worker: requests past
//! its bound (`dashboard::limit::MAX_REQUESTS`, 32) are refused at once with
//! 503 and `Retry-After` instead of piling up in the head, and the head
//! answers and runs work normally afterwards.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use reef_testkit::{free_port, guest, HostProcess};

/// The head's bound on concurrent dashboard requests.
const MAX_REQUESTS: usize = 32;
/// Requests fired at once.
const REQUESTS: usize = 128;

/// A reply: its status, its `Retry-After` header, its body.
struct Reply {
    status: u16,
    retry_after: Option<String>,
    body: String,
}

/// `GET path` on the dashboard at 127.0.0.1:`port` with the cluster token.
fn get(port: u16, path: &str, token: &str) -> Reply {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connecting to the dashboard");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
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
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status code");
    let retry_after = head.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.eq_ignore_ascii_case("retry-after")
            .then(|| value.trim().to_string())
    });
    Reply {
        status,
        retry_after,
        body: body.to_string(),
    }
}

/// SIGSTOPs a process; SIGCONTs it when dropped (a failing test too).
struct Frozen(u32);

impl Frozen {
    fn new(pid: u32) -> Frozen {
        signal("-STOP", pid);
        Frozen(pid)
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        signal("-CONT", self.0);
    }
}

fn signal(which: &str, pid: u32) {
    let status = Command::new("kill")
        .args([which, &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill {which} {pid}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_past_the_bound_are_shed_and_the_head_stays_healthy() {
    let (head_dir, worker_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let port = free_port();
    let head = HostProcess::start(head_dir.path(), &["--dashboard-port", &port.to_string()]);
    let worker = HostProcess::start_worker(worker_dir.path(), &head, &[]);
    let token = head.token();
    let overview = get(port, "/api/overview", &token);
    assert_eq!(overview.status, 200, "{}", overview.body);

    // A stopped worker holds every request for the state API's 3 s deadline,
    // so the requests fired at once are all in the head at the same time.
    let frozen = Frozen::new(worker.pid());
    let barrier = Arc::new(Barrier::new(REQUESTS));
    let started = Instant::now();
    let threads: Vec<_> = (0..REQUESTS)
        .map(|_| {
            let (barrier, token) = (barrier.clone(), token.clone());
            std::thread::spawn(move || {
                barrier.wait();
                get(port, "/api/tasks", &token)
            })
        })
        .collect();
    let replies: Vec<Reply> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let took = started.elapsed();
    drop(frozen);

    let served = replies.iter().filter(|r| r.status == 200).count();
    let shed: Vec<&Reply> = replies.iter().filter(|r| r.status == 503).collect();
    for r in &replies {
        assert!(
            r.status == 200 || r.status == 503,
            "{} {}",
            r.status,
            r.body
        );
    }
    assert!(served >= 1, "no request was served");
    // All were in flight at once (the served ones waited ~3 s or more), so
    // at most the bound were served.
    assert!(
        served <= MAX_REQUESTS,
        "{served} of {REQUESTS} requests served at once in {took:?}"
    );
    assert_eq!(served + shed.len(), REQUESTS);
    for r in shed {
        assert_eq!(r.retry_after.as_deref(), Some("1"), "{}", r.body);
        assert!(r.body.contains("OVERLOADED"), "{}", r.body);
    }

    // Healthy afterwards: the dashboard answers with both nodes, and the
    // head runs a task.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = get(port, "/api/overview", &token);
        assert_eq!(r.status, 200, "{}", r.body);
        let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        if v["nodes"].as_array().map(Vec::len) == Some(2)
            && v["tasks"]["missing_nodes"] == serde_json::json!([])
        {
            break;
        }
        assert!(Instant::now() < deadline, "{v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let cluster = head.connect().await;
    let demo = cluster.register_file(guest("demo")).await.unwrap();
    let sum = cluster
        .task(&demo, "add")
        .arg(2.0)
        .arg(3.0)
        .submit()
        .unwrap();
    assert_eq!(cluster.get::<f64>(&sum).await.unwrap(), 5.0);
}
