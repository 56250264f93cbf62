//! Reef's benchmark suite (`make bench`): each module measures one group of
//! figures and prints one line per figure beside its target (see `report`).
//! How each figure is measured is in the doc comment of its function.

pub mod cluster;
pub mod harness;
pub mod instance;
pub mod langs;
pub mod memory;
pub mod put;
pub mod report;
pub mod roundtrip;
pub mod throughput;
pub mod views;
