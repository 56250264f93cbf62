//! Guest languages side by side: the same demo module (noop, sum_slice,
//! add, Accumulator) built from Rust, C, Go, Python, JavaScript and
//! TypeScript. The interpreted languages (Python, JS, TS) are held to targets
//! taken from the same run: a noop round trip within 3x the Rust guest's, a
//! 64 MiB view sum within 5x the C guest's, and the same noop round trip in a
//! reused instance (`max_calls=0`) within 3x the Rust guest's reused one.
//! Every other line is reported only.

use std::time::{Duration, Instant};

use anyhow::{ensure, Result};
use reef::{Cluster, Module};

use crate::harness::{self, ChildNode, MIB};
use crate::report::{median_us, Bound, Figure, Unit};

/// (language, module name in the guest directory).
const MODULES: [(&str, &str); 6] = [
    ("rust", "demo"),
    ("c", "c_demo"),
    ("go", "go_demo"),
    ("python", "python_demo"),
    ("js", "js_demo"),
    ("ts", "ts_demo"),
];

const NOOP_WARMUP: usize = 100;
const NOOP_CALLS: usize = 1000;
const SUM_RUNS: usize = 3;
/// f64s summed: 64 MiB.
const SUM_LEN: u64 = 8 * 1024 * 1024;
/// The interpreted languages' noop round trip: at most this times Rust's.
const NOOP_VS_RUST: f64 = 3.0;
/// The interpreted languages' view sum: at most this times C's.
const SUM_VS_C: f64 = 5.0;
/// The languages held to those targets.
const INTERPRETED: [&str; 3] = ["python", "js", "ts"];

/// Every language module present in the guest directory (`harness::guest`);
/// a missing one is skipped with a note on stderr.
pub async fn all() -> Result<()> {
    let mut rust_noop_us = None;
    let mut rust_reused_us = None;
    let mut c_sum_ms = None;
    for (lang, name) in MODULES {
        let path = harness::guest(name);
        if !path.exists() {
            eprintln!(
                "langs: {lang} skipped: {} is missing (build it, or set REEF_GUESTS)",
                path.display()
            );
            continue;
        }
        let targets = if INTERPRETED.contains(&lang) {
            Targets {
                noop_us: rust_noop_us.map(|us| us * NOOP_VS_RUST),
                reused_us: rust_reused_us.map(|us| us * NOOP_VS_RUST),
                sum_ms: c_sum_ms.map(|ms| ms * SUM_VS_C),
            }
        } else {
            Targets::default()
        };
        let (noop_us, reused_us, sum_ms) = language(lang, name, targets).await?;
        match lang {
            "rust" => {
                rust_noop_us = Some(noop_us);
                rust_reused_us = Some(reused_us);
            }
            "c" => c_sum_ms = Some(sum_ms),
            _ => {}
        }
    }
    Ok(())
}

/// Bounds of one language's noop round trip (µs) and view sum (ms); `None`
/// reports the figure only.
#[derive(Default)]
pub struct Targets {
    pub noop_us: Option<f64>,
    /// The noop round trip in a reused instance (`max_calls=0`).
    pub reused_us: Option<f64>,
    pub sum_ms: Option<f64>,
}

fn bound(target: Option<f64>) -> Bound {
    target.map_or(Bound::Report, Bound::AtMost)
}

/// For one module:
/// - **module size**: the `.wasm` file as built.
/// - **first registration**: `register_file` on a fresh head node (a child
///   `host` process, empty data dir): upload, componentize and compile.
/// - **cached registration**: the node is stopped and restarted on the same
///   data dir; `register_file` again (the compiled module comes from its cache).
/// - **noop round trip**: median of `NOOP_CALLS` sync `noop()` tasks (submit to
///   result) after `NOOP_WARMUP`; every task runs in a fresh instance, so this
///   includes the language's instance start. Instance start alone is not
///   measured per language here (the `instance` group measures it for Rust).
/// - **noop round trip, reused instance**: the same with `max_calls=0`: after
///   the warm-up every task runs in the one instance the node keeps, so this
///   is the round trip without instance start or first-call costs.
/// - **sum of a 64 MiB view**: `sum_slice` over 8M f64 (0..8M, checked), one
///   task, submit to result; median of `SUM_RUNS` after a warm-up.
///
/// Returns the noop round trips (µs; fresh, reused) and the view sum (ms).
pub async fn language(lang: &str, name: &str, targets: Targets) -> Result<(f64, f64, f64)> {
    let path = harness::guest(name);
    let size = std::fs::metadata(&path)?.len();
    Figure::new(
        format!("{lang} module size ({name}.wasm)"),
        size as f64 / MIB as f64,
        Unit::MiB,
        Bound::Report,
    )
    .print();

    let dir = tempfile::Builder::new().prefix("reef-bench-").tempdir()?;
    let args = ["--object-store-memory", "512MiB"];
    let first = {
        let node = ChildNode::start_in(dir.path(), &args)?;
        harness::wait_steady(&harness::arena_of(&node.address)?).await?;
        let cluster = node.connect().await?;
        let start = Instant::now();
        cluster.register_file(&path).await?;
        start.elapsed()
    };
    Figure::new(
        format!("{lang} first registration (compile, fresh node)"),
        ms(first),
        Unit::Millis,
        Bound::Report,
    )
    .print();

    let node = ChildNode::start_in(dir.path(), &args)?;
    harness::wait_steady(&harness::arena_of(&node.address)?).await?;
    let cluster = node.connect().await?;
    let start = Instant::now();
    let module = cluster.register_file(&path).await?;
    let cached = start.elapsed();
    Figure::new(
        format!("{lang} cached registration (node restarted on the same data dir)"),
        ms(cached),
        Unit::Millis,
        Bound::Report,
    )
    .print();

    let noop_us = noop_rtt_us(&cluster, &module, None).await?;
    let vs_rust = match targets.noop_us {
        Some(_) => format!(", target {NOOP_VS_RUST}x rust's"),
        None => String::new(),
    };
    Figure::new(
        format!("{lang} trivial task round trip (sync noop, median of {NOOP_CALLS}{vs_rust})"),
        noop_us,
        Unit::Micros,
        bound(targets.noop_us),
    )
    .print();

    let reused_us = noop_rtt_us(&cluster, &module, Some(0)).await?;
    let vs_rust = match targets.reused_us {
        Some(_) => format!(", target {NOOP_VS_RUST}x rust's"),
        None => String::new(),
    };
    Figure::new(
        format!(
            "{lang} trivial task round trip, max_calls=0 (reused instance, median of {NOOP_CALLS}{vs_rust})"
        ),
        reused_us,
        Unit::Micros,
        bound(targets.reused_us),
    )
    .print();

    let xs: Vec<f64> = (0..SUM_LEN).map(|i| i as f64).collect();
    let expected: f64 = xs.iter().sum();
    let data = cluster.put_f64s(&xs).await?;
    drop(xs);
    let mut times = vec![];
    for i in 0..=SUM_RUNS {
        let start = Instant::now();
        let r = cluster
            .task(&module, "sum_slice")
            .arg(&data)
            .arg(0u64)
            .arg(SUM_LEN)
            .memory_limit(512 * MIB)
            .submit()?;
        let sum: f64 = cluster.get(&r).await?;
        let t = start.elapsed();
        ensure!(sum == expected, "{lang}: sum_slice returned {sum}");
        if i > 0 {
            times.push(t);
        }
    }
    let sum_ms = median_us(&times) / 1e3;
    let vs_c = match targets.sum_ms {
        Some(_) => format!(", target {SUM_VS_C}x c's"),
        None => String::new(),
    };
    Figure::new(
        format!("{lang} sum of a 64 MiB view (sum_slice over 8M f64, median of {SUM_RUNS}{vs_c})"),
        sum_ms,
        Unit::Millis,
        bound(targets.sum_ms),
    )
    .print();
    Ok((noop_us, reused_us, sum_ms))
}

/// `max_calls`: `None` for the default (a fresh instance per task).
async fn noop_rtt_us(cluster: &Cluster, module: &Module, max_calls: Option<u32>) -> Result<f64> {
    let mut samples: Vec<Duration> = Vec::with_capacity(NOOP_CALLS);
    for i in 0..NOOP_WARMUP + NOOP_CALLS {
        let start = Instant::now();
        let task = cluster.task(module, "noop");
        let task = match max_calls {
            Some(n) => task.max_calls(n),
            None => task,
        };
        let r = task.submit()?;
        cluster.get::<()>(&r).await?;
        if i >= NOOP_WARMUP {
            samples.push(start.elapsed());
        }
    }
    Ok(median_us(&samples))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
