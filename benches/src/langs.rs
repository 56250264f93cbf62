//! Guest languages side by side: the same demo module (noop, sum_slice,
//! add, Accumulator) built from Rust, C, Go, Python, JavaScript and
//! TypeScript. No targets: every line is reported only.

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

const NOOP_WARMUP: usize = 20;
const NOOP_CALLS: usize = 200;
const SUM_RUNS: usize = 3;
/// f64s summed: 64 MiB.
const SUM_LEN: u64 = 8 * 1024 * 1024;

/// Every language module present in the guest directory (`harness::guest`);
/// a missing one is skipped with a note on stderr.
pub async fn all() -> Result<()> {
    for (lang, name) in MODULES {
        let path = harness::guest(name);
        if !path.exists() {
            eprintln!(
                "langs: {lang} skipped: {} is missing (build it, or set REEF_GUESTS)",
                path.display()
            );
            continue;
        }
        language(lang, name).await?;
    }
    Ok(())
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
/// - **sum of a 64 MiB view**: `sum_slice` over 8M f64 (0..8M, checked), one
///   task, submit to result; median of `SUM_RUNS` after a warm-up.
pub async fn language(lang: &str, name: &str) -> Result<()> {
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
        harness::wait_allocated(&harness::arena_of(&node.address)?).await?;
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
    harness::wait_allocated(&harness::arena_of(&node.address)?).await?;
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

    Figure::new(
        format!("{lang} trivial task round trip (sync noop, median of {NOOP_CALLS})"),
        noop_rtt_us(&cluster, &module).await?,
        Unit::Micros,
        Bound::Report,
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
    Figure::new(
        format!("{lang} sum of a 64 MiB view (sum_slice over 8M f64, median of {SUM_RUNS})"),
        median_us(&times) / 1e3,
        Unit::Millis,
        Bound::Report,
    )
    .print();
    Ok(())
}

async fn noop_rtt_us(cluster: &Cluster, module: &Module) -> Result<f64> {
    let mut samples: Vec<Duration> = Vec::with_capacity(NOOP_CALLS);
    for i in 0..NOOP_WARMUP + NOOP_CALLS {
        let start = Instant::now();
        let r = cluster.task(module, "noop").submit()?;
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
