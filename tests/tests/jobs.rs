//! `host job submit|list|status|logs|stop` against a real head: a submitted
//! driver runs, connects back and its sessions are the job's; a failing
//! command is FAILED with its exit code; `stop` ends a sleeping job; a job's
//! process ends when its head is SIGKILLed; jobs outlive a head restart (one
//! running when the head died is FAILED).

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use reef_testkit::{free_port, host_bin, HostProcess};
use serde_json::Value;

/// `host job ARGS... [-- COMMAND...]` against `head` (the node options go
/// before `--`).
fn job(head: &HostProcess, args: &[&str], command: &[&str]) -> Output {
    let mut c = Command::new(host_bin());
    c.arg("job")
        .args(args)
        .arg("--address")
        .arg(&head.address)
        .arg("--token-file")
        .arg(head.admin_token_file());
    if !command.is_empty() {
        c.arg("--").args(command);
    }
    c.output().expect("running host job")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "host job failed: {}\n{}",
        stdout(&out),
        String::from_utf8_lossy(&out.stderr)
    );
    stdout(&out)
}

/// Submits without waiting; the job's id.
fn submit(head: &HostProcess, extra: &[&str], command: &[&str]) -> String {
    let mut args = vec!["submit", "--no-wait"];
    args.extend_from_slice(extra);
    ok(job(head, &args, command)).trim().to_string()
}

fn status(head: &HostProcess, id: &str) -> Value {
    serde_json::from_str(&ok(job(head, &["status", id, "--json"], &[]))).unwrap()
}

/// Polls the job until its state is not PENDING or RUNNING; every state seen.
fn wait_done(head: &HostProcess, id: &str) -> (Value, Vec<String>) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen: Vec<String> = Vec::new();
    loop {
        let s = status(head, id);
        let state = s["state"].as_str().unwrap().to_string();
        if seen.last() != Some(&state) {
            seen.push(state.clone());
        }
        if state != "PENDING" && state != "RUNNING" {
            return (s, seen);
        }
        assert!(Instant::now() < deadline, "job {id} still {state}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn logs(head: &HostProcess, id: &str) -> String {
    ok(job(head, &["logs", id], &[]))
}

fn head_in(dir: &Path) -> HostProcess {
    HostProcess::start(dir, &["--num-cpus", "2"])
}

#[test]
fn a_submitted_driver_runs_and_its_sessions_are_the_job() {
    let dir = tempfile::tempdir().unwrap();
    let head = head_in(dir.path());
    let driver = env!("CARGO_BIN_EXE_job_driver");
    let work = tempfile::tempdir().unwrap();
    let script = format!("echo in $(pwd) as $GREETING; exec {driver}");
    let id = submit(
        &head,
        &[
            "--working-dir",
            work.path().to_str().unwrap(),
            "--env",
            "GREETING=hello",
            "--env",
            "TASKS=30",
            "--submission-id",
            "driver-1",
        ],
        &["sh", "-c", &script],
    );
    assert_eq!(id, "driver-1");
    // Following prints the output as it comes and returns when the job ends.
    let followed = ok(job(&head, &["logs", &id, "--follow"], &[]));
    let (s, seen) = wait_done(&head, &id);
    assert_eq!(s["state"], "SUCCEEDED", "{s}");
    assert_eq!(s["exit_code"], 0);
    assert!(s["ended_at_ms"].as_u64().unwrap() >= s["started_at_ms"].as_u64().unwrap());
    assert_eq!(seen.last().unwrap(), "SUCCEEDED");
    let out = logs(&head, &id);
    assert_eq!(followed, out);
    let workdir = work.path().canonicalize().unwrap();
    assert!(
        out.contains(&format!("in {} as hello", workdir.display())),
        "{out}"
    );
    assert!(out.contains("progress 30/30"), "{out}");
    assert!(out.contains("sum 435"), "{out}");
    // Its driver sessions are recorded as jobs of this submission, ended.
    let sessions = s["driver_jobs"].as_array().unwrap();
    assert!(!sessions.is_empty(), "{s}");
    let listed: Value = serde_json::from_slice(
        &head
            .cli(&[
                "list",
                "jobs",
                "--filter",
                "submission_id=driver-1",
                "--json",
            ])
            .stdout,
    )
    .unwrap();
    let rows = listed["rows"].as_array().unwrap();
    assert_eq!(rows.len(), sessions.len(), "{listed}");
    assert!(rows.iter().all(|r| r["state"] == "ended"), "{listed}");
    // And it is in the list.
    let list: Value = serde_json::from_str(&ok(job(&head, &["list", "--json"], &[]))).unwrap();
    assert!(list
        .as_array()
        .unwrap()
        .iter()
        .any(|j| j["submission_id"] == "driver-1" && j["state"] == "SUCCEEDED"));
}

#[test]
fn a_failing_command_is_failed_with_its_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let head = head_in(dir.path());
    // Waiting (no --no-wait): the output is printed, the CLI fails.
    let out = job(
        &head,
        &["submit", "--submission-id", "bad"],
        &["sh", "-c", "echo about to fail; echo oops >&2; exit 7"],
    );
    assert!(!out.status.success());
    assert!(stdout(&out).contains("about to fail"), "{}", stdout(&out));
    let (s, _) = wait_done(&head, "bad");
    assert_eq!(s["state"], "FAILED");
    assert_eq!(s["exit_code"], 7);
    assert!(s["message"].as_str().unwrap().contains("code 7"), "{s}");
    let out = logs(&head, "bad");
    assert!(
        out.contains("about to fail") && out.contains("oops"),
        "{out}"
    );

    // A command that cannot start, an id taken, an unknown id: clear errors.
    let id = submit(&head, &[], &["/no/such/program"]);
    let (s, _) = wait_done(&head, &id);
    assert_eq!(s["state"], "FAILED");
    assert!(
        s["message"].as_str().unwrap().contains("cannot start"),
        "{s}"
    );
    let taken = job(&head, &["submit", "--submission-id", "bad"], &["true"]);
    assert!(!taken.status.success());
    assert!(String::from_utf8_lossy(&taken.stderr).contains("exists already"));
    let unknown = job(&head, &["status", "nope"], &[]);
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no job `nope`"));
    let bad_id = job(&head, &["submit", "--submission-id", "../x"], &["true"]);
    assert!(String::from_utf8_lossy(&bad_id.stderr).contains("not a job id"));
}

#[test]
fn stop_ends_a_sleeping_job() {
    let dir = tempfile::tempdir().unwrap();
    let head = head_in(dir.path());
    // The shell and its child sleep: the whole process group is stopped.
    let id = submit(&head, &[], &["sh", "-c", "sleep 1000; echo never"]);
    let s = status(&head, &id);
    assert_eq!(s["state"], "RUNNING", "{s}");
    let pid = s["pid"].as_u64().unwrap();
    assert!(Path::new(&format!("/proc/{pid}")).exists());
    let started = Instant::now();
    let stopped = ok(job(&head, &["stop", &id], &[]));
    assert!(stopped.contains("STOPPED"), "{stopped}");
    assert!(started.elapsed() < Duration::from_secs(5));
    let s = status(&head, &id);
    assert_eq!(s["state"], "STOPPED");
    assert!(s["ended_at_ms"].as_u64().is_some());
    assert!(!Path::new(&format!("/proc/{pid}")).exists());
    assert!(!logs(&head, &id).contains("never"));
    // Stopping it again answers the same.
    assert!(ok(job(&head, &["stop", &id], &[])).contains("STOPPED"));
}

#[test]
fn jobs_outlive_a_head_restart() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut head = HostProcess::start_on(dir.path(), port, &[]).unwrap();
    let done = submit(&head, &[], &["sh", "-c", "echo finished"]);
    assert_eq!(wait_done(&head, &done).0["state"], "SUCCEEDED");
    let lost = submit(&head, &[], &["sleep", "1000"]);
    head.kill().unwrap();

    let head = HostProcess::start_on(dir.path(), port, &[]).unwrap();
    let s = status(&head, &done);
    assert_eq!(s["state"], "SUCCEEDED");
    assert_eq!(logs(&head, &done), "finished\n");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let s = status(&head, &lost);
        if s["state"] == "FAILED" {
            assert!(s["message"].as_str().unwrap().contains("head"), "{s}");
            break;
        }
        assert_eq!(s["state"], "RUNNING");
        assert!(Instant::now() < deadline, "{s}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_jobs_process_ends_when_its_head_is_killed() {
    let dir = tempfile::tempdir().unwrap();
    let mut head = head_in(dir.path());
    let work = tempfile::tempdir().unwrap();
    let pids = work.path().join("pids");
    // A shell that starts a `sleep` of its own, writes both pids, and waits.
    let script = format!(
        "sleep 600 & echo $$ $! > {0}.tmp; mv {0}.tmp {0}; wait",
        pids.display()
    );
    let id = submit(&head, &[], &["sh", "-c", &script]);
    let deadline = Instant::now() + Duration::from_secs(20);
    let (shell, sleep) = loop {
        let written = std::fs::read_to_string(&pids).unwrap_or_default();
        let parsed: Vec<u32> = written
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect();
        if let [shell, sleep] = parsed[..] {
            break (shell, sleep);
        }
        assert!(Instant::now() < deadline, "the job wrote no pids");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status(&head, &id)["pid"].as_u64(), Some(u64::from(shell)));
    assert!(
        alive(shell) && alive(sleep),
        "the job's processes are not running"
    );
    head.kill().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    for pid in [shell, sleep] {
        while alive(pid) {
            assert!(
                Instant::now() < deadline,
                "the job's process {pid} outlived its SIGKILLed head by 10 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Whether process `pid` runs (a zombie left for its new parent to reap
/// does not).
fn alive(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // `pid (comm) STATE ...`: the state follows the last parenthesis.
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next());
    !matches!(state, None | Some("Z" | "X"))
}

/// A submitted job is a process on the head outside any sandbox: a
/// tenant's token (here the default tenant's) may not start, list or stop
/// one; the admin's may.
#[test]
fn only_the_admin_submits_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let head = HostProcess::start(dir.path(), &[]);
    for args in [
        vec!["job", "submit", "--no-wait", "--token-file"],
        vec!["job", "list", "--token-file"],
    ] {
        let mut c = Command::new(host_bin());
        c.args(&args)
            .arg(&head.token_file)
            .arg("--address")
            .arg(&head.address);
        if args[1] == "submit" {
            c.args(["--", "true"]);
        }
        let out = c.output().unwrap();
        assert!(!out.status.success(), "{out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("PERMISSION_DENIED") && err.contains("admin"),
            "{err}"
        );
    }
    ok(job(&head, &["list"], &[]));
}
