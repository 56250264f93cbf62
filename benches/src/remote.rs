//! Figures 7b: a driver on another machine puts and gets 1 GiB, measured on
//! one machine over loopback TCP with the same-machine path (the mapped
//! arena, the Unix socket) turned off: the bytes go over raw connections to
//! the node's port.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use reef::{Cluster, ConnectOptions};

use crate::harness::ChildNode;
use crate::put::{gb_per_s, puts, RUNS};
use crate::report::{Bound, Figure, Unit};

/// **Remote `put` and `get` of 1 GiB.** `Cluster::put_bytes` of a
/// pre-touched 1 GiB buffer, released between runs; then `get_bytes` of one
/// stored 1 GiB object into a fresh buffer, dropped between runs. Figures:
/// 1 GiB (10^9-byte GB) over the median time of `RUNS`.
pub async fn figures(data: &[u8]) -> Result<()> {
    let node = ChildNode::start(&["--object-store-memory", "1536MiB"])?;
    // After allocating, the node collapses its arena into 2 MiB pages in the
    // background (seconds of copying for 1.5 GiB): let it finish.
    reef_testkit::arena::wait_huge_pages(&node.address).await?;
    let options = ConnectOptions::default()
        .token(&node.token()?)
        .same_machine(false);
    let cluster = Cluster::connect_with(&node.address, options).await?;
    ensure!(
        !cluster.is_same_machine(),
        "the driver uses shared-memory segments"
    );
    let times = puts(&cluster, data, RUNS).await?;
    Figure::new(
        "remote driver put of 1 GiB (loopback TCP, same-machine path off, median)",
        gb_per_s(data.len(), &times),
        Unit::GBPerSec,
        Bound::AtLeast(1.0),
    )
    .print();
    let times = gets(&cluster, data, RUNS).await?;
    Figure::new(
        "remote driver get of 1 GiB (loopback TCP, same-machine path off, median)",
        gb_per_s(data.len(), &times),
        Unit::GBPerSec,
        Bound::AtLeast(1.0),
    )
    .print();
    drop(cluster);
    ts_figures(&node, data.len(), RUNS)?;
    Ok(())
}

/// How the TS driver script is run, and the rows it gives.
struct TsRun {
    /// `put`, `get` or both (the script's `--ops`).
    ops: &'static str,
    /// `GLIBC_TUNABLES` for the node process, if any.
    tunables: Option<&'static str>,
    /// After "of 1 GiB " in the rows' names.
    label: &'static str,
    bound: Bound,
}

/// The runs of [`ts_figures`]. The second shows where the default get's
/// time goes: the result is a fresh 1 GiB `ArrayBuffer` that the kernel
/// faults in 4 KiB page by page as the bytes arrive (about half the time).
/// The Rust driver asks for 2 MiB pages (`MADV_HUGEPAGE`); Node cannot, but
/// glibc's malloc does it for its large chunks when the process starts with
/// `GLIBC_TUNABLES=glibc.malloc.hugetlb=1`.
const TS_RUNS: [TsRun; 2] = [
    TsRun {
        ops: "put,get",
        tunables: None,
        label: "(loopback TCP, same-machine path off, median)",
        bound: Bound::AtLeast(1.0),
    },
    TsRun {
        ops: "get",
        tunables: Some("glibc.malloc.hugetlb=1"),
        label:
            "(as above, node run with GLIBC_TUNABLES=glibc.malloc.hugetlb=1: 2 MiB pages, median)",
        bound: Bound::Report,
    },
];

/// The TS driver's script, built by `npm run build` in driver/ts.
const TS_SCRIPT: &str = "driver/ts/dist-test/examples/remote_bench.js";

/// **The TypeScript driver's remote `put` and `get` of 1 GiB**, beside the
/// Rust driver's: `node` runs [`TS_SCRIPT`] against the same node (token in
/// `$REEF_TOKEN`), which times `runs` puts and `runs` gets of `len` bytes and
/// prints `put_ms <t>...` and `get_ms <t>...`; the medians are the figures.
/// Skipped, with a note, when `node` or the built script is missing.
fn ts_figures(node: &ChildNode, len: usize, runs: usize) -> Result<()> {
    let script = reef_testkit::workspace_root().join(TS_SCRIPT);
    if !script.exists() {
        eprintln!(
            "remote: TS driver rows skipped: {} is missing (cd driver/ts && npm ci && npm run build)",
            script.display()
        );
        return Ok(());
    }
    for run in &TS_RUNS {
        let mut command = Command::new("node");
        command
            .arg("--expose-gc")
            .arg(&script)
            .args(["--address", &node.address])
            .args(["--size", &len.to_string(), "--runs", &runs.to_string()])
            .args(["--ops", run.ops])
            .env("REEF_TOKEN", node.token()?)
            .stderr(Stdio::inherit());
        if let Some(tunables) = run.tunables {
            command.env("GLIBC_TUNABLES", tunables);
        }
        let output = match command.output() {
            Ok(output) => output,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                eprintln!(
                    "remote: TS driver rows skipped: `node` is not installed (scripts/install-deps.sh)"
                );
                return Ok(());
            }
            Err(e) => return Err(e).context("running node"),
        };
        ensure!(
            output.status.success(),
            "the TS driver script {} failed ({})",
            script.display(),
            output.status
        );
        let stdout = String::from_utf8_lossy(&output.stdout);
        for op in run.ops.split(',') {
            let times = ts_times(&stdout, &format!("{op}_ms"))?;
            Figure::new(
                format!("remote TS driver {op} of 1 GiB {}", run.label),
                gb_per_s(len, &times),
                Unit::GBPerSec,
                run.bound,
            )
            .print();
        }
        if run.tunables.is_none() && run.ops.contains("get") {
            let times = ts_times(&stdout, "get_into_ms")?;
            Figure::new(
                "remote TS driver get of 1 GiB into a reused buffer (getBytes(ref, { into }), \
                 loopback TCP, median)",
                gb_per_s(len, &times),
                Unit::GBPerSec,
                Bound::Report,
            )
            .print();
        }
    }
    Ok(())
}

/// The times of the script's line `<key> <ms> <ms>...`.
fn ts_times(stdout: &str, key: &str) -> Result<Vec<Duration>> {
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix(key).and_then(|rest| rest.strip_prefix(' ')))
        .with_context(|| format!("the TS driver script printed no `{key}` line: {stdout:?}"))?;
    let times = line
        .split_whitespace()
        .map(|ms| {
            ms.parse::<f64>()
                .map(|ms| Duration::from_secs_f64(ms / 1e3))
                .with_context(|| format!("`{key}`: `{ms}` is not a number of milliseconds"))
        })
        .collect::<Result<Vec<_>>>()?;
    ensure!(!times.is_empty(), "`{key}` has no times");
    Ok(times)
}

/// `runs` gets of one stored copy of `data`, each into a fresh buffer.
pub async fn gets(cluster: &Cluster, data: &[u8], runs: usize) -> Result<Vec<Duration>> {
    let obj = cluster.put_bytes(data).await?;
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let start = Instant::now();
        let back = cluster.get_bytes(&obj).await?;
        times.push(start.elapsed());
        ensure!(back.len() == data.len(), "got {} bytes", back.len());
    }
    tracing::info!(?times, "gets of {} bytes", data.len());
    Ok(times)
}
