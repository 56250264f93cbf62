//! Figure 5: a guest's zero-copy view of an object, at 1 MiB, 64 MiB and
//! 1 GiB, beside the copy it replaces.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{ensure, Result};
use reef_host::guest::buffer::GuestBuffer;
use reef_host::guest::views::{Views, VIEW_ALIGN};
use reef_host::module::Module;
use reef_host::node::Node;
use reef_host::spec::{ArgSpec, CallOptions, TaskSpec};
use reef_host::store::{Data, ObjectId};

use crate::harness::{GIB, MIB};
use crate::report::{median_us, percentile_us, Bound, Figure, Unit};

/// Guest memory limit of every task here: a 1 GiB view (or copy) needs a
/// guest memory above 1 GiB.
const MEMORY_LIMIT: u64 = 2 * GIB + GIB / 2;
/// Where every zero-copy line is held.
const TARGET_US: f64 = 100.0;

struct Size {
    label: &'static str,
    bytes: u64,
    /// (noop, view_len) pairs.
    view_pairs: usize,
    copy_runs: usize,
}

const SIZES: [Size; 3] = [
    Size {
        label: "1 MiB",
        bytes: MIB,
        view_pairs: 400,
        copy_runs: 100,
    },
    Size {
        label: "64 MiB",
        bytes: 64 * MIB,
        view_pairs: 400,
        copy_runs: 10,
    },
    Size {
        label: "1 GiB",
        bytes: GIB,
        view_pairs: 60,
        copy_runs: 3,
    },
];

/// **Guest view of an object**, three ways, each in-process (no gRPC, so the
/// differences are not lost in loopback noise):
///
/// - *task*: median latency of a `view_len(obj)` task minus that of a
///   `noop()` task, run as interleaved pairs through `Tasks::submit` and
///   `ObjectStore::get`. This is what a view adds to a task: the guest's
///   buffer allocation (`memory.grow`), `map-view`, `release-view` and the
///   larger memory reset when the instance is dropped.
/// - *host map*: `Views::map` + `Views::release` alone, over an anonymous
///   region of the bench process, median of 1000.
/// - *copy*: median latency of `touch_copy(obj)` (the guest copies the
///   object in with the host `get` and reads a byte per page) minus the
///   `noop()` median: what the view replaces.
pub async fn guest_views(node: &Arc<Node>, demo: &Arc<Module>) -> Result<()> {
    for size in &SIZES {
        let id = put_object(node, size.bytes)?;
        let mut noops = Vec::with_capacity(size.view_pairs);
        let mut views = Vec::with_capacity(size.view_pairs);
        // Warm-up pairs, then measured pairs.
        for i in 0..size.view_pairs + 5 {
            let noop = run(node, demo, "noop", vec![]).await?;
            let (view, out) = run_with(node, demo, "view_len", vec![ArgSpec::Object(id)]).await?;
            ensure!(
                rmp_serde::from_slice::<u64>(&out)? == size.bytes,
                "view_len returned a wrong length"
            );
            if i >= 5 {
                noops.push(noop);
                views.push(view);
            }
        }
        let noop_us = median_us(&noops);
        Figure::new(
            format!(
                "guest view of {} (view_len task - noop task, median)",
                size.label
            ),
            median_us(&views) - noop_us,
            Unit::Micros,
            Bound::AtMost(TARGET_US),
        )
        .print();

        Figure::new(
            format!(
                "guest view of {} (host map + undo only, median)",
                size.label
            ),
            host_map_us(node, id).await?,
            Unit::Micros,
            Bound::AtMost(TARGET_US),
        )
        .print();

        let mut copies = Vec::with_capacity(size.copy_runs);
        for _ in 0..size.copy_runs {
            copies.push(run(node, demo, "touch_copy", vec![ArgSpec::Object(id)]).await?);
        }
        tracing::info!(
            label = size.label,
            noop_us,
            view_us = median_us(&views),
            copy_max_us = percentile_us(&copies, 1.0),
            "guest view task medians"
        );
        Figure::alternative(
            format!(
                "guest view of {} (copy: get into guest, touch_copy task - noop task, median)",
                size.label
            ),
            median_us(&copies) - noop_us,
            Unit::Micros,
            Bound::AtMost(TARGET_US),
        )
        .print();
        node.store().release(id);
    }
    Ok(())
}

/// Stores a `len`-byte object in the node's arena, as a driver's put would.
fn put_object(node: &Node, len: u64) -> Result<ObjectId> {
    let block = node.store().allocate(len)?;
    // SAFETY: the block is new and ours alone until `insert_ready` seals it.
    unsafe { block.as_mut_slice() }.fill(0xa5);
    let id = node.objects.new_object_id();
    node.store()
        .insert_ready(id, Arc::new(Data::Arena(block)), 1)?;
    Ok(id)
}

async fn run(
    node: &Arc<Node>,
    demo: &Module,
    function: &str,
    args: Vec<ArgSpec>,
) -> Result<Duration> {
    Ok(run_with(node, demo, function, args).await?.0)
}

/// Runs a task to completion: its latency from submission to sealed result, and the result.
async fn run_with(
    node: &Arc<Node>,
    demo: &Module,
    function: &str,
    args: Vec<ArgSpec>,
) -> Result<(Duration, Vec<u8>)> {
    let return_id = node.objects.new_object_id();
    let start = Instant::now();
    node.tasks.submit(TaskSpec {
        return_id,
        module: demo.hash.clone(),
        function: function.to_string(),
        args,
        options: CallOptions {
            memory_limit: Some(MEMORY_LIMIT),
            ..Default::default()
        },
        owner: None,
        strategy: Default::default(),
        hops: 0,
        tenant: Default::default(),
    })?;
    let result = node.store().get(return_id).await;
    let elapsed = start.elapsed();
    node.store().release(return_id);
    Ok((elapsed, result?.as_slice().to_vec()))
}

/// Median of `Views::map` + `Views::release` of object `id` over a
/// stand-in for guest memory: an anonymous region of this process.
async fn host_map_us(node: &Node, id: ObjectId) -> Result<f64> {
    let data = node.store().get(id).await?;
    let len = data.len().div_ceil(VIEW_ALIGN) as usize * VIEW_ALIGN as usize;
    let region = AnonRegion::new(len)?;
    let mut views = Views::default();
    let mut samples = Vec::with_capacity(1000);
    for _ in 0..1050 {
        let start = Instant::now();
        views.map(data.clone(), region.buffer(), 0)?;
        views.release(region.addr());
        samples.push(start.elapsed());
    }
    Ok(median_us(&samples[50..]))
}

/// An anonymous private mapping, unmapped on drop.
struct AnonRegion {
    ptr: *mut u8,
    len: usize,
}

impl AnonRegion {
    fn new(len: usize) -> Result<Self> {
        // SAFETY: a fresh anonymous mapping; no existing memory is affected.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        ensure!(
            ptr != libc::MAP_FAILED,
            "mmap: {}",
            std::io::Error::last_os_error()
        );
        Ok(AnonRegion {
            ptr: ptr as *mut u8,
            len,
        })
    }
    fn addr(&self) -> usize {
        self.ptr as usize
    }
    /// The region as a guest buffer (at a 64 KiB-aligned offset past any data segment).
    fn buffer(&self) -> GuestBuffer {
        GuestBuffer {
            offset: 1 << 30,
            len: self.len,
            addr: self.addr(),
        }
    }
}

impl Drop for AnonRegion {
    fn drop(&mut self) {
        // SAFETY: unmapping the region `new` mapped; no slice of it outlives `self`.
        unsafe { libc::munmap(self.ptr as *mut libc::c_void, self.len) };
    }
}
