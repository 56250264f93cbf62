//! The seed demo and its large sibling, as figures: a stored array of `f64`
//! summed in slices by tasks whose guests read it through zero-copy views
//! (the Rust guest `demo.wasm` and the C guest `c_demo.wasm`), beside the
//! host-native time of the same sums (the physical floor).

use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use reef::{Cluster, Module, ObjectRef};

use crate::harness::{self, GIB};
use crate::report::{median_us, Bound, Figure, Unit};

/// The seed demo's array: `f64` 0..8_000_000 (64 MB).
pub const SEED_N: u64 = 8_000_000;
/// Its tasks, each summing a quarter.
pub const SEED_TASKS: u64 = 4;
pub const SEED_WARMUP: usize = 3;
pub const SEED_RUNS: usize = 20;

/// The map/reduce array: 1 GiB of `f64`, 0..2^27.
pub const MAP_N: u64 = GIB / 8;
/// Its map tasks, each summing 1/64 (16 MiB).
pub const MAP_TASKS: u64 = 64;
pub const MAP_WARMUP: usize = 1;
pub const MAP_RUNS: usize = 5;
/// Guest memory limit of the map tasks: each maps the whole 1 GiB object.
const MAP_MEMORY_LIMIT: u64 = GIB + GIB / 2;

/// Targets of `make bench`, absolute so that it stays Reef-only: the seed demo
/// at 0.4x Ray's time and the map/reduce at 0.5x. `make bench-ray` measured
/// Ray's seed demo at 9.5-11.3 ms and its map/reduce at 100-107 ms on the
/// 2-core VM in December 2026 (numpy tasks warm), so 0.4x is ~4 ms and 0.5x
/// ~50 ms. The map/reduce's floor is memory bandwidth: the host-native sum of
/// the 1 GiB takes 31-35 ms with two threads here, 60-65 ms with one (printed
/// beside it).
const SEED_TARGET_MS: f64 = 4.0;
const MAP_TARGET_MS: f64 = 50.0;

/// The guests whose `sum_slice(xs, start, end)` the figures run.
pub const GUESTS: [(&str, &str); 2] = [("demo", "Rust guest"), ("c_demo", "C guest")];

/// `f64` 0..n.
pub fn arange(n: u64) -> Vec<f64> {
    (0..n).map(|i| i as f64).collect()
}

/// 0 + 1 + ... + (n - 1): exact in `f64` for the sizes here (below 2^53),
/// whatever the order of the additions.
pub fn expected_sum(n: u64) -> f64 {
    (n * (n - 1) / 2) as f64
}

/// A stored `f64` array 0..n and the tasks that sum it in `parts` slices.
pub struct SumParts<'a> {
    pub cluster: &'a Cluster,
    pub obj: &'a ObjectRef,
    pub n: u64,
    pub parts: u64,
    pub memory_limit: Option<u64>,
}

impl SumParts<'_> {
    /// The seed demo over `obj` (0..`SEED_N`, already stored).
    pub fn seed<'a>(cluster: &'a Cluster, obj: &'a ObjectRef) -> SumParts<'a> {
        SumParts {
            cluster,
            obj,
            n: SEED_N,
            parts: SEED_TASKS,
            memory_limit: None,
        }
    }

    /// The map/reduce over `obj` (0..`MAP_N`, already stored).
    pub fn map_reduce<'a>(cluster: &'a Cluster, obj: &'a ObjectRef) -> SumParts<'a> {
        SumParts {
            cluster,
            obj,
            n: MAP_N,
            parts: MAP_TASKS,
            memory_limit: Some(MAP_MEMORY_LIMIT),
        }
    }

    /// One run: `parts` `sum_slice` tasks of `module` submitted at once, then
    /// `get_many` of their results, whose total is checked. Its time from the
    /// first submit to the last result.
    pub async fn run(&self, module: &Module) -> Result<Duration> {
        let start = Instant::now();
        let refs = (0..self.parts)
            .map(|p| {
                let task = self
                    .cluster
                    .task(module, "sum_slice")
                    .arg(self.obj)
                    .arg(self.n * p / self.parts)
                    .arg(self.n * (p + 1) / self.parts);
                match self.memory_limit {
                    Some(limit) => task.memory_limit(limit),
                    None => task,
                }
                .submit()
            })
            .collect::<reef::Result<Vec<_>>>()?;
        let sums: Vec<f64> = self.cluster.get_many(&refs).await?;
        let elapsed = start.elapsed();
        let total: f64 = sums.iter().sum();
        ensure!(
            total == expected_sum(self.n),
            "the partial sums add up to {total}, not {}",
            expected_sum(self.n)
        );
        Ok(elapsed)
    }

    /// `runs` timed runs after `warmup` untimed ones.
    pub async fn samples(
        &self,
        module: &Module,
        warmup: usize,
        runs: usize,
    ) -> Result<Vec<Duration>> {
        for _ in 0..warmup {
            self.run(module).await?;
        }
        let mut samples = Vec::with_capacity(runs);
        for _ in 0..runs {
            samples.push(self.run(module).await?);
        }
        Ok(samples)
    }
}

/// A plain Rust sum, written so the compiler vectorizes it: eight independent
/// running sums (one dependency chain would bound it by the add latency, not
/// by memory bandwidth).
pub fn lane_sum(xs: &[f64]) -> f64 {
    let mut lanes = [0.0f64; 8];
    let chunks = xs.chunks_exact(8);
    let tail: f64 = chunks.remainder().iter().sum();
    for chunk in chunks {
        for (lane, x) in lanes.iter_mut().zip(chunk) {
            *lane += x;
        }
    }
    lanes.iter().sum::<f64>() + tail
}

/// **Host-native sum**: the same `SEED_TASKS` slices of the stored array summed
/// by [`lane_sum`] in the driver, one thread, reading the object in place
/// (the driver maps its segment). `runs` timed runs after `warmup` untimed ones.
pub async fn host_sum_samples(
    cluster: &Cluster,
    obj: &ObjectRef,
    n: u64,
    warmup: usize,
    runs: usize,
) -> Result<Vec<Duration>> {
    let data = cluster.get_bytes(obj).await?;
    ensure!(
        data.is_zero_copy(),
        "the driver does not read the object in place"
    );
    let xs = data.as_f64s().context("the object is not aligned f64s")?;
    ensure!(xs.len() as u64 == n, "the object holds {} f64s", xs.len());
    let quarter = xs.len() / SEED_TASKS as usize;
    let mut samples = Vec::with_capacity(runs);
    for i in 0..warmup + runs {
        let start = Instant::now();
        let total: f64 = xs
            .chunks(quarter)
            .map(|slice| lane_sum(std::hint::black_box(slice)))
            .sum();
        let elapsed = start.elapsed();
        ensure!(total == expected_sum(n), "host sum {total}");
        if i >= warmup {
            samples.push(elapsed);
        }
    }
    Ok(samples)
}

/// A local node with 2 CPUs (as `make bench-ray` gives Ray) and an arena for
/// the 1 GiB map/reduce array.
pub async fn local_cluster() -> Result<Cluster> {
    let cluster =
        Cluster::local_with(&["--num-cpus", "2", "--object-store-memory", "1536MiB"]).await?;
    // Views of the stored arrays are measured on a node in its steady state.
    reef_testkit::arena::wait_huge_pages(cluster.address()).await?;
    Ok(cluster)
}

/// `make bench`'s rows: the seed demo on each guest, the host-native sum, and
/// the 1 GiB map/reduce (Rust guest), each the median of its runs.
pub async fn figures() -> Result<()> {
    let cluster = local_cluster().await?;
    let seed = cluster.put_f64s(&arange(SEED_N)).await?;
    for (guest, label) in GUESTS {
        let module = cluster.register_file(harness::guest(guest)).await?;
        let samples = SumParts::seed(&cluster, &seed)
            .samples(&module, SEED_WARMUP, SEED_RUNS)
            .await?;
        Figure::new(
            format!(
                "seed demo, {label} ({SEED_TASKS} tasks summing a stored 64 MB f64 array, \
                 median of {SEED_RUNS})"
            ),
            median_us(&samples) / 1e3,
            Unit::Millis,
            Bound::AtMost(SEED_TARGET_MS),
        )
        .print();
    }
    let host = host_sum_samples(&cluster, &seed, SEED_N, SEED_WARMUP, SEED_RUNS).await?;
    Figure::new(
        "seed demo's sums host-native (a Rust loop over the arena in the driver, one thread, median)",
        median_us(&host) / 1e3,
        Unit::Millis,
        Bound::Report,
    )
    .print();
    drop(seed);

    let data = arange(MAP_N);
    let obj = cluster.put_f64s(&data).await?;
    drop(data);
    let demo = cluster.register_file(harness::guest("demo")).await?;
    let samples = SumParts::map_reduce(&cluster, &obj)
        .samples(&demo, MAP_WARMUP, MAP_RUNS)
        .await?;
    Figure::new(
        format!(
            "map/reduce of 1 GiB of f64 over {MAP_TASKS} tasks, Rust guest (stored array, \
             median of {MAP_RUNS})"
        ),
        median_us(&samples) / 1e3,
        Unit::Millis,
        Bound::AtMost(MAP_TARGET_MS),
    )
    .print();
    let host = host_sum_samples(&cluster, &obj, MAP_N, MAP_WARMUP, MAP_RUNS).await?;
    Figure::new(
        "map/reduce's sums host-native (a Rust loop over the arena in the driver, one thread: \
         the memory-bandwidth floor, median)",
        median_us(&host) / 1e3,
        Unit::Millis,
        Bound::Report,
    )
    .print();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lane_sum_matches_a_plain_sum() {
        for n in [0, 1, 7, 8, 9, 1001] {
            let xs = arange(n);
            assert_eq!(lane_sum(&xs), xs.iter().sum::<f64>(), "n = {n}");
            if n > 0 {
                assert_eq!(lane_sum(&xs), expected_sum(n));
            }
        }
    }
}
