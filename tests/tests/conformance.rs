//! One conformance suite for every guest language: the same cases run against
//! each language's demo module (the seed demo's `sum_slice` and `Accumulator`,
//! plus `noop`, `echo`, `add` and `fail`), so that the SDKs behave alike.
//!
//! A language is a row of [`LANGUAGES`]: its demo module, how that module names
//! its functions and classes, and the few things an SDK words its own way (error
//! texts, how a failure is reported). Adding a language is adding a row (and a
//! line to `conformance_tests!`). Cases a single SDK has go in its row's
//! `extra` (they run on the same node, with the module already compiled) or in
//! `tests/tests/lang_<language>.rs`.
//!
//! Each row runs on one node: the demo module is compiled once in a fresh data
//! directory, the node restarts on it and must load the module from its cache
//! (Python and JS components take 10–20 s of CPU to compile), and every case
//! then runs there.
//!
//! Modules: target/guests/, built by scripts/build-guests.sh.

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use reef::{Arg, Cluster, ErrorCode, Module};
use reef_testkit::{guest, HostProcess};
use reef_tests::{add, assert_seed_demo, still_serving, task_error};

/// A language-specific case, run after the shared ones on the row's node.
type Extra = for<'a> fn(&'a Cluster, &'a Module) -> Pin<Box<dyn Future<Output = ()> + 'a>>;

/// One guest language.
struct Language {
    name: &'static str,
    /// The demo module (`target/guests/<demo>.wasm`).
    demo: &'static str,
    /// What the module reports as its SDK.
    sdk: &'static str,
    /// Its tasks and actor classes with their methods, as it names them.
    tasks: &'static [&'static str],
    actors: &'static [(&'static str, &'static [&'static str])],
    /// The module and task that fail with the message given as argument 0.
    fail: (&'static str, &'static str),
    /// How that failure reaches the driver: its code, the text the message
    /// starts with before the argument (`None`: the argument appears somewhere),
    /// whether the message is exactly the argument, what else it contains
    /// (`{}` stands for the module's name) and what it must not contain.
    fail_code: ErrorCode,
    fail_prefix: Option<&'static str>,
    fail_exact: bool,
    fail_contains: &'static [&'static str],
    fail_lacks: &'static [&'static str],
    /// What the SDK says for `add(1.0)` and `add("one", 2.0)`.
    missing_argument: &'static str,
    wrong_type: &'static str,
    /// The code and text of a range outside the object (`None`: only the code
    /// is checked).
    bad_range_code: ErrorCode,
    bad_range: Option<&'static str>,
    /// Whether an unknown task's error lists the module's tasks.
    lists_tasks: bool,
    /// A cached registration must be this many times faster than the first
    /// (`None`: modules that compile in well under a second).
    cache_speedup: Option<u32>,
    extra: Option<Extra>,
}

const DEMO_TASKS: &[&str] = &["sum_slice", "noop", "echo", "add", "fail"];
const ACCUMULATOR: &[(&str, &[&str])] = &[("Accumulator", &["add", "total"])];

const LANGUAGES: &[Language] = &[
    Language {
        name: "rust",
        demo: "demo",
        sdk: "reef-guest-rust/0.1.0",
        tasks: &[
            "sum_slice",
            "sum_copy",
            "noop",
            "echo",
            "add",
            "view_len",
            "touch_view",
            "touch_copy",
            "hold_view",
            "hold_copy",
            "node_id",
        ],
        actors: &[("Accumulator", &["add", "total"]), ("Where", &["node"])],
        // The Rust demo has no `fail`: the `bad` guest's is the same task.
        fail: ("bad", "fail"),
        fail_code: ErrorCode::GuestError,
        fail_prefix: Some(""),
        fail_exact: true,
        fail_contains: &[],
        fail_lacks: &[],
        missing_argument: "argument 1: missing",
        wrong_type: "argument 0: expected a number, got str",
        // The demo raises BadArgument for a range outside the object.
        bad_range_code: ErrorCode::BadArgument,
        bad_range: Some("1..9 is outside 0..3"),
        lists_tasks: true,
        cache_speedup: None,
        extra: None,
    },
    Language {
        name: "c",
        demo: "c_demo",
        sdk: "reef-guest-c/0.1.0",
        tasks: DEMO_TASKS,
        actors: ACCUMULATOR,
        fail: ("c_demo", "fail"),
        fail_code: ErrorCode::GuestError,
        fail_prefix: Some(""),
        fail_exact: true,
        fail_contains: &[],
        fail_lacks: &[],
        missing_argument: "argument 1: missing",
        wrong_type: "argument 0: expected a number, got str (\"one\")",
        bad_range_code: ErrorCode::BadArgument,
        bad_range: Some("1..9 is outside 0..3"),
        lists_tasks: true,
        cache_speedup: None,
        extra: Some(|c, m| Box::pin(c_extra(c, m))),
    },
    Language {
        name: "go",
        demo: "go_demo",
        sdk: "reef-guest-go/0.1.0",
        tasks: &[
            "sum_slice",
            "sum_copy",
            "view_len",
            "noop",
            "echo",
            "add",
            "fail",
        ],
        actors: ACCUMULATOR,
        fail: ("go_demo", "fail"),
        // A Go task fails by panicking; the report carries the goroutine's stack.
        fail_code: ErrorCode::GuestPanic,
        fail_prefix: None,
        fail_exact: false,
        fail_contains: &["goroutine", "main.go"],
        fail_lacks: &[],
        missing_argument: "argument 1: missing",
        wrong_type: "argument 0",
        bad_range_code: ErrorCode::BadArgument,
        bad_range: None,
        lists_tasks: false,
        cache_speedup: None,
        extra: Some(|c, m| Box::pin(go_extra(c, m))),
    },
    Language {
        name: "python",
        demo: "python_demo",
        sdk: "reef-guest-python/0.1.0",
        tasks: DEMO_TASKS,
        actors: ACCUMULATOR,
        fail: ("python_demo", "fail"),
        fail_code: ErrorCode::GuestError,
        fail_prefix: Some("ValueError: "),
        fail_exact: false,
        // The traceback names the raising function and its file, and starts in the
        // user's code, not in the SDK's dispatch.
        fail_contains: &["Traceback (most recent call last):", "app.py", "in fail"],
        fail_lacks: &["reef/__init__.py"],
        missing_argument: "expected 2 arguments",
        wrong_type: "argument 0 (a): expected a number, got str",
        bad_range_code: ErrorCode::BadArgument,
        bad_range: None,
        lists_tasks: false,
        cache_speedup: Some(1),
        extra: Some(|c, m| Box::pin(python_extra(c, m))),
    },
    Language {
        name: "js",
        demo: "js_demo",
        sdk: "reef-guest-js/0.1.0",
        tasks: DEMO_TASKS,
        actors: ACCUMULATOR,
        fail: ("js_demo", "fail"),
        fail_code: ErrorCode::GuestError,
        fail_prefix: Some("Error: "),
        fail_exact: false,
        fail_contains: &["Stack (most recent call first):", "fail@{}.js:"],
        fail_lacks: &[],
        missing_argument: "expects 2 arguments, got 1",
        wrong_type: "argument 0: expected f64, got str",
        // The demo throws the SDK's BadArgument for a range outside the object.
        bad_range_code: ErrorCode::BadArgument,
        bad_range: Some("range 1..9 is outside 0..3"),
        lists_tasks: false,
        cache_speedup: Some(4),
        extra: Some(|c, m| Box::pin(js_extra(c, m))),
    },
    Language {
        name: "ts",
        demo: "ts_demo",
        sdk: "reef-guest-js/0.1.0",
        tasks: &[
            "sum_slice",
            "noop",
            "echo",
            "add",
            "fail",
            "stats",
            "put_get",
            "nested_add",
            "nested_sum",
            "actor_roundtrip",
        ],
        actors: ACCUMULATOR,
        fail: ("ts_demo", "fail"),
        // The TypeScript demo throws a TypeError from a nested function.
        fail_code: ErrorCode::GuestError,
        fail_prefix: Some("TypeError: "),
        fail_exact: false,
        fail_contains: &["Stack (most recent call first):", "explode@{}.js:"],
        fail_lacks: &[],
        missing_argument: "expects 2 arguments, got 1",
        wrong_type: "argument 0: expected f64, got str",
        // The demo throws the SDK's BadArgument for a range outside the object.
        bad_range_code: ErrorCode::BadArgument,
        bad_range: Some("range 1..9 is outside 0..3"),
        lists_tasks: false,
        cache_speedup: Some(2),
        extra: Some(|c, m| Box::pin(ts_extra(c, m))),
    },
];

fn language(name: &str) -> &'static Language {
    LANGUAGES
        .iter()
        .find(|l| l.name == name)
        .unwrap_or_else(|| panic!("no row for {name}"))
}

/// Runs every case for one row.
async fn conform(lang: &Language) {
    let dir = tempfile::tempdir().unwrap();
    let args = ["--object-store-memory", "256MiB"];
    let module = guest(lang.demo);
    let first = {
        let node = HostProcess::start(dir.path(), &args);
        let cluster = node.connect().await;
        let t = Instant::now();
        let m = cluster.register_file(&module).await.unwrap();
        let first = t.elapsed();
        assert!(
            !m.cached,
            "{}: a fresh data dir holds no compiled module",
            lang.name
        );
        first
    };
    let node = HostProcess::start(dir.path(), &args);
    let cluster = node.connect().await;
    let t = Instant::now();
    let m = cluster.register_file(&module).await.unwrap();
    let cached = t.elapsed();
    eprintln!(
        "{}: registration first {first:?}, cached {cached:?}",
        lang.demo
    );
    cached_registration(lang, &m, first, cached);
    describe(lang, &m);
    assert_seed_demo(&cluster, &module).await;
    add_noop_echo(&cluster, &m).await;
    reused_instance(&cluster, &m).await;
    bad_arguments(lang, &cluster, &m).await;
    unknown_names(lang, &cluster, &m).await;
    a_failure_reaches_the_driver(lang, &cluster, &m).await;
    the_actor(&cluster, &m).await;
    if let Some(extra) = lang.extra {
        extra(&cluster, &m).await;
    }
    still_serving(&cluster, &m, None).await;
}

fn cached_registration(lang: &Language, m: &Module, first: Duration, cached: Duration) {
    assert!(
        m.cached,
        "{}: the restarted node compiled the module again",
        lang.name
    );
    if let Some(speedup) = lang.cache_speedup {
        assert!(
            cached < first / speedup && cached < Duration::from_secs(5),
            "{}: cached registration {cached:?} vs first {first:?}",
            lang.name
        );
    }
}

fn describe(lang: &Language, m: &Module) {
    assert_eq!(m.sdk, lang.sdk, "{}", lang.name);
    assert_eq!(m.tasks, lang.tasks, "{}", lang.name);
    let actors: Vec<(String, Vec<String>)> = lang
        .actors
        .iter()
        .map(|(class, methods)| {
            (
                class.to_string(),
                methods.iter().map(|s| s.to_string()).collect(),
            )
        })
        .collect();
    assert_eq!(m.actors, actors, "{}", lang.name);
}

/// Tasks with `max_calls=0` (one instance kept for every call): each call
/// sees its own arguments and views, a failed call drops the instance and
/// the next starts a fresh one that works alike.
async fn reused_instance(cluster: &Cluster, m: &Module) {
    // 256K f64s (2 MiB): an arena object, so `sum_slice` maps a real view.
    let n = 256 * 1024u64;
    let xs: Vec<f64> = (0..n).map(|i| i as f64).collect();
    let data = cluster.put_f64s(&xs).await.unwrap();
    let sum = |start: u64, end: u64| (start..end).map(|i| i as f64).sum::<f64>();
    for round in 0..3u64 {
        let r = cluster
            .task(m, "add")
            .arg(round as f64)
            .arg(0.5)
            .max_calls(0)
            .submit()
            .unwrap();
        assert_eq!(cluster.get::<f64>(&r).await.unwrap(), round as f64 + 0.5);
        for (start, end) in [(0, n), (round * 1000, n / 2), (n - 7, n)] {
            let r = cluster
                .task(m, "sum_slice")
                .arg(&data)
                .arg(start)
                .arg(end)
                .max_calls(0)
                .submit()
                .unwrap();
            assert_eq!(cluster.get::<f64>(&r).await.unwrap(), sum(start, end));
        }
        // A range outside the object fails the call (and drops the instance).
        let r = cluster
            .task(m, "sum_slice")
            .arg(&data)
            .arg(1u64)
            .arg(n + 1)
            .max_calls(0)
            .submit()
            .unwrap();
        assert!(cluster.get::<f64>(&r).await.is_err());
    }
}

async fn add_noop_echo(cluster: &Cluster, m: &Module) {
    // add: floats, and integers where floats are asked for; the result is a float64.
    assert_eq!(add(cluster, m, 20.0, 22.5).await, 42.5);
    let r = cluster.task(m, "add").arg(1.5).arg(2u64).submit().unwrap();
    assert_eq!(cluster.get::<f64>(&r).await.unwrap(), 3.5);
    let r = cluster
        .task(m, "add")
        .arg(2u64)
        .arg(-5i64)
        .submit()
        .unwrap();
    assert_eq!(
        &cluster.get_bytes(&r).await.unwrap()[..],
        &[0xcb, 0xc0, 0x08, 0, 0, 0, 0, 0, 0]
    );
    // noop -> nil.
    let r = cluster.task(m, "noop").submit().unwrap();
    assert_eq!(&cluster.get_bytes(&r).await.unwrap()[..], &[0xc0]);
    // echo: raw bytes back as they are (not MessagePack), inline and from objects.
    for raw in [
        vec![0xc1u8, 0, 255, 7, b'\n'],
        b"\x00\xffraw bytes, not MessagePack".to_vec(),
        Vec::new(),
        // Larger than the Go SDK's static transfer arena (1 MiB).
        (0..2_500_000u32).map(|i| (i % 239) as u8).collect(),
    ] {
        let r = cluster
            .task(m, "echo")
            .arg(Arg::bytes(raw.clone()))
            .submit()
            .unwrap();
        assert_eq!(&cluster.get_bytes(&r).await.unwrap()[..], &raw[..]);
    }
    for len in [300_000u32, 3_000_000] {
        let big: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
        let obj = cluster.put_bytes(&big).await.unwrap();
        let r = cluster.task(m, "echo").arg(&obj).submit().unwrap();
        assert_eq!(&cluster.get_bytes(&r).await.unwrap()[..], &big[..]);
    }
    // sum_slice over part of a small object.
    let xs: Vec<f64> = (0..1000u64).map(|i| i as f64).collect();
    let data = cluster.put_f64s(&xs).await.unwrap();
    let r = cluster
        .task(m, "sum_slice")
        .arg(&data)
        .arg(10u64)
        .arg(20u64)
        .submit()
        .unwrap();
    assert_eq!(cluster.get::<f64>(&r).await.unwrap(), 145.0);
}

async fn bad_arguments(lang: &Language, cluster: &Cluster, m: &Module) {
    let name = lang.name;
    let e = task_error(cluster, cluster.task(m, "add").arg(1.0).submit().unwrap()).await;
    assert_eq!(e.code, ErrorCode::BadArgument, "{name}: {e}");
    assert!(e.message.contains(lang.missing_argument), "{name}: {e}");
    let e = task_error(
        cluster,
        cluster.task(m, "add").arg("one").arg(2.0).submit().unwrap(),
    )
    .await;
    assert_eq!(e.code, ErrorCode::BadArgument, "{name}: {e}");
    assert!(e.message.contains(lang.wrong_type), "{name}: {e}");
    assert!(e.message.contains("str"), "{name}: {e}");
    // Not MessagePack where a value is expected.
    let e = task_error(
        cluster,
        cluster
            .task(m, "add")
            .arg(Arg::bytes(vec![0xc1]))
            .arg(1.0)
            .submit()
            .unwrap(),
    )
    .await;
    assert_eq!(e.code, ErrorCode::BadArgument, "{name}: {e}");
    // An inline value where sum_slice needs an object.
    for inline in [Arg::from(1.0), Arg::from(3u64)] {
        let e = task_error(
            cluster,
            cluster
                .task(m, "sum_slice")
                .arg(inline)
                .arg(0u64)
                .arg(1u64)
                .submit()
                .unwrap(),
        )
        .await;
        assert_eq!(e.code, ErrorCode::BadArgument, "{name}: {e}");
        assert!(e.message.contains("expected an object"), "{name}: {e}");
    }
    // Ranges outside the object.
    let xs = cluster.put_f64s(&[1.0, 2.0, 3.0]).await.unwrap();
    for (start, end) in [(1u64, 9u64), (0, 4)] {
        let e = task_error(
            cluster,
            cluster
                .task(m, "sum_slice")
                .arg(&xs)
                .arg(start)
                .arg(end)
                .submit()
                .unwrap(),
        )
        .await;
        assert_eq!(e.code, lang.bad_range_code, "{name} {start}..{end}: {e}");
        if let (Some(text), 1) = (lang.bad_range, start) {
            assert!(e.message.contains(text), "{name}: {e}");
        }
    }
    assert_eq!(add(cluster, m, 1.0, 2.0).await, 3.0, "{name}");
}

async fn unknown_names(lang: &Language, cluster: &Cluster, m: &Module) {
    let name = lang.name;
    let e = task_error(cluster, cluster.task(m, "no_such_task").submit().unwrap()).await;
    assert_eq!(e.code, ErrorCode::UnknownFunction, "{name}: {e}");
    assert!(e.message.contains("no_such_task"), "{name}: {e}");
    if lang.lists_tasks {
        assert!(e.message.contains("sum_slice"), "{name}: {e}");
    }
    let acc = cluster.actor(m, "Accumulator").create().await.unwrap();
    let e = task_error(cluster, acc.call("no_such_method").submit().unwrap()).await;
    assert_eq!(e.code, ErrorCode::UnknownFunction, "{name}: {e}");
    assert!(e.message.contains("no_such_method"), "{name}: {e}");
    let e = cluster
        .actor(m, "NoSuchClass")
        .create()
        .await
        .err()
        .unwrap();
    assert_eq!(e.code, ErrorCode::UnknownFunction, "{name}: {e}");
    // The actor survived the bad call; its constructor's default is 0.
    let r = acc.call("add").arg(2.5).submit().unwrap();
    assert_eq!(cluster.get::<f64>(&r).await.unwrap(), 2.5, "{name}");
}

async fn a_failure_reaches_the_driver(lang: &Language, cluster: &Cluster, demo: &Module) {
    let name = lang.name;
    let (module, task) = lang.fail;
    let m = if module == lang.demo {
        demo.clone()
    } else {
        cluster.register_file(guest(module)).await.unwrap()
    };
    let kept: Vec<u8> = (0..200_000u32).map(|i| (i % 199) as u8 + 1).collect();
    let kept_ref = cluster.put_bytes(&kept).await.unwrap();
    for text in ["boom 42 from the guest: état ✗", "again"] {
        let e = task_error(cluster, cluster.task(&m, task).arg(text).submit().unwrap()).await;
        assert_eq!(e.code, lang.fail_code, "{name}: {e}");
        match lang.fail_prefix {
            Some(prefix) => assert!(
                e.message.starts_with(&format!("{prefix}{text}")),
                "{name}: {}",
                e.message
            ),
            None => assert!(e.message.contains(text), "{name}: {}", e.message),
        }
        if lang.fail_exact {
            assert_eq!(e.message, text, "{name}");
        }
        for part in lang.fail_contains {
            let part = part.replace("{}", module);
            assert!(
                e.message.contains(&part),
                "{name}: no {part:?} in {}",
                e.message
            );
        }
        for part in lang.fail_lacks {
            assert!(
                !e.message.contains(part),
                "{name}: {part:?} in {}",
                e.message
            );
        }
        // The node survives and keeps serving (and keeps its objects).
        still_serving(cluster, demo, Some((&kept_ref, &kept))).await;
    }
}

async fn the_actor(cluster: &Cluster, m: &Module) {
    // A creation argument, the running total; a bad call fails the call, not the actor.
    let acc = cluster
        .actor(m, "Accumulator")
        .arg(1.5)
        .create()
        .await
        .unwrap();
    let r = acc.call("add").arg(2u64).submit().unwrap();
    assert_eq!(cluster.get::<f64>(&r).await.unwrap(), 3.5);
    let e = task_error(cluster, acc.call("add").arg("x").submit().unwrap()).await;
    assert_eq!(e.code, ErrorCode::BadArgument, "{e}");
    let r = acc.call("total").submit().unwrap();
    assert_eq!(cluster.get::<f64>(&r).await.unwrap(), 3.5);
    // Many calls in one instance: what each call allocates is freed.
    let acc = cluster.actor(m, "Accumulator").create().await.unwrap();
    let refs: Vec<_> = (0..2000)
        .map(|_| acc.call("add").arg(1.0).submit().unwrap())
        .collect();
    let totals: Vec<f64> = cluster.get_many(&refs).await.unwrap();
    assert_eq!(totals.last(), Some(&2000.0));
    let acc = cluster
        .actor(m, "Accumulator")
        .arg(100.0)
        .create()
        .await
        .unwrap();
    let r = acc.call("add").arg(-1.0).submit().unwrap();
    assert_eq!(cluster.get::<f64>(&r).await.unwrap(), 99.0);
    let r = acc.call("total").submit().unwrap();
    assert_eq!(cluster.get::<f64>(&r).await.unwrap(), 99.0);
}

/// C: an empty failure message and an empty inline argument (the host passes
/// placeholder pointers for both).
async fn c_extra(cluster: &Cluster, m: &Module) {
    let r = cluster.task(m, "fail").arg("").submit().unwrap();
    let e = task_error(cluster, r).await;
    assert_eq!((e.code, e.message.as_str()), (ErrorCode::GuestError, ""));
}

/// Go: `sum_copy` (host get) and `view_len` (a view) over one object.
async fn go_extra(cluster: &Cluster, m: &Module) {
    let xs: Vec<f64> = (0..100_000u64).map(|i| i as f64).collect();
    let data = cluster.put_f64s(&xs).await.unwrap();
    let r = cluster
        .task(m, "sum_copy")
        .arg(&data)
        .arg(10u64)
        .arg(1010u64)
        .submit()
        .unwrap();
    let expected: f64 = (10..1010u64).map(|i| i as f64).sum();
    assert_eq!(cluster.get::<f64>(&r).await.unwrap(), expected);
    let r = cluster.task(m, "view_len").arg(&data).submit().unwrap();
    assert_eq!(cluster.get::<u64>(&r).await.unwrap(), 800_000);
    let r = cluster
        .task(m, "add")
        .arg(2u64)
        .arg(-3i64)
        .submit()
        .unwrap();
    assert_eq!(cluster.get::<f64>(&r).await.unwrap(), -1.0);
}

/// Python: figures for the README (printed with --nocapture; only correctness
/// is asserted): a noop round trip and `sum_slice` over a 64 MiB object.
async fn python_extra(cluster: &Cluster, m: &Module) {
    let t = Instant::now();
    for _ in 0..20 {
        let r = cluster.task(m, "noop").submit().unwrap();
        assert_eq!(&cluster.get_bytes(&r).await.unwrap()[..], &[0xc0]);
    }
    eprintln!("python noop round trip: {:?}", t.elapsed() / 20);
    let e = task_error(
        cluster,
        cluster
            .task(m, "add")
            .arg(Arg::bytes(vec![0xc1]))
            .arg(1.0)
            .submit()
            .unwrap(),
    )
    .await;
    assert!(e.message.contains("not MessagePack"), "{e}");
    let xs: Vec<f64> = (0..8_388_608u64).map(|i| (i % 1000) as f64).collect();
    let data = cluster.put_f64s(&xs).await.unwrap();
    let sum = |end: u64| {
        let data = &data;
        async move {
            let t = Instant::now();
            let r = cluster
                .task(m, "sum_slice")
                .arg(data)
                .arg(0u64)
                .arg(end)
                .submit()
                .unwrap();
            (cluster.get::<f64>(&r).await.unwrap(), t.elapsed())
        }
    };
    let (v, empty) = sum(0).await;
    assert_eq!(v, 0.0);
    let (v, whole) = sum(xs.len() as u64).await;
    assert_eq!(v, xs.iter().sum::<f64>());
    eprintln!(
        "python sum_slice over a 64 MiB object: whole {whole:?}; empty range (the copy alone) {empty:?}"
    );
}

/// JS: the thrown Error's log line, a negative range end, and the memory
/// limit: reading an object holds it twice in guest memory (the lifted list,
/// then the JS ArrayBuffer), so past the call's limit it is MEMORY_LIMIT, not
/// a crash.
async fn js_extra(cluster: &Cluster, m: &Module) {
    let r = cluster.task(m, "fail").arg("boom 42").submit().unwrap();
    task_error(cluster, r.clone()).await;
    let logs = cluster.logs(&r).await.unwrap();
    assert!(
        logs.log
            .iter()
            .any(|l| l.contains("about to fail with boom 42")),
        "{logs:?}"
    );
    let data = cluster.put_f64s(&[1.0, 2.0]).await.unwrap();
    let e = task_error(
        cluster,
        cluster
            .task(m, "sum_slice")
            .arg(&data)
            .arg(0u64)
            .arg(-1i64)
            .submit()
            .unwrap(),
    )
    .await;
    assert_eq!(e.code, ErrorCode::BadArgument, "{e}");
    let big = vec![1.0f64; 6 << 20]; // 48 MiB
    let big = cluster.put_f64s(&big).await.unwrap();
    // Reading the object into the guest (echo) needs about twice its size:
    // over a 64 MiB limit, MEMORY_LIMIT.
    let r = cluster
        .task(m, "echo")
        .arg(&big)
        .memory_limit(64 << 20)
        .submit()
        .unwrap();
    let e = task_error(cluster, r).await;
    assert_eq!(e.code, ErrorCode::MemoryLimit, "{e}");
    // sum_slice reads nothing into the guest (the node sums the stored
    // object), so the same limit is plenty.
    let r = cluster
        .task(m, "sum_slice")
        .arg(&big)
        .arg(0u64)
        .arg(2u64)
        .memory_limit(64 << 20)
        .submit()
        .unwrap();
    assert_eq!(cluster.get::<f64>(&r).await.unwrap(), 2.0);
}

/// TypeScript: the SDK's surface used from inside tasks (put/get, nested
/// tasks, named actors, logs).
async fn ts_extra(cluster: &Cluster, m: &Module) {
    use std::collections::BTreeMap;
    // A structured value put as an object and read back.
    let value = (String::from("x"), vec![1u64, 2, 3], true);
    let r = cluster
        .task(m, "put_get")
        .arg(Arg::value(&value).unwrap())
        .submit()
        .unwrap();
    assert_eq!(
        cluster.get::<(String, Vec<u64>, bool)>(&r).await.unwrap(),
        value
    );
    let logs = cluster.logs(&r).await.unwrap();
    assert!(
        logs.log.iter().any(|l| l.contains("put object")),
        "{logs:?}"
    );
    // Nested tasks.
    let r = cluster
        .task(m, "nested_add")
        .arg(40.0)
        .arg(2.0)
        .submit()
        .unwrap();
    assert_eq!(cluster.get::<f64>(&r).await.unwrap(), 42.0);
    let xs: Vec<f64> = (0..100_000u64).map(|i| i as f64).collect();
    let data = cluster.put_f64s(&xs).await.unwrap();
    let r = cluster
        .task(m, "nested_sum")
        .arg(&data)
        .arg(3u64)
        .submit()
        .unwrap();
    assert_eq!(
        cluster.get::<f64>(&r).await.unwrap(),
        xs.iter().sum::<f64>()
    );
    // A map result with float64 fields.
    let r = cluster.task(m, "stats").arg(&data).submit().unwrap();
    let stats: BTreeMap<String, f64> = cluster.get(&r).await.unwrap();
    assert_eq!(stats["n"], 100_000.0);
    assert_eq!(stats["max"], 99_999.0);
    assert_eq!(stats["mean"], 49_999.5);
    // Named actors from inside a task; the driver finds the same actor.
    let r = cluster
        .task(m, "actor_roundtrip")
        .arg("ts-acc")
        .submit()
        .unwrap();
    assert_eq!(cluster.get::<Vec<f64>>(&r).await.unwrap(), vec![6.0, 6.0]);
    let acc = cluster.get_actor("ts-acc").await.unwrap();
    let r = acc.call("add").arg(4.0).submit().unwrap();
    assert_eq!(cluster.get::<f64>(&r).await.unwrap(), 10.0);
}

/// One test per row, named after it (`cargo test --test conformance python`).
macro_rules! conformance_tests {
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            conform(language(stringify!($name))).await;
        }
    )*
        /// Every row has its test.
        #[test]
        fn every_language_has_a_test() {
            let tested = [$(stringify!($name)),*];
            for lang in LANGUAGES {
                assert!(tested.contains(&lang.name), "add {} to conformance_tests!", lang.name);
            }
        }
    };
}

conformance_tests!(rust, c, go, python, js, ts);
