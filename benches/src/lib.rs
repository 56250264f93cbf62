//! Reef's benchmark suite (`make bench`): each module measures one group of
//! figures and prints one line per figure beside its target (see `report`).
//! How each figure is measured is in the doc comment of its function.
//! `make bench-ray` (`bin/bench_ray.rs`) runs the same workloads on Reef and
//! on a local Ray (`ray`, driving `benches/ray/bench_ray.py`) side by side.

pub mod cluster;
pub mod dispatch;
pub mod harness;
pub mod head_restart;
pub mod instance;
pub mod isolation;
pub mod langs;
pub mod memory;
pub mod metrics;
pub mod put;
pub mod ray;
pub mod recovery;
pub mod remote;
pub mod report;
pub mod restarts;
pub mod roundtrip;
pub mod seed;
pub mod throughput;
pub mod views;
