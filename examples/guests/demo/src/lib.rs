//! Demo guest: small tasks for tests and benchmarks, and an `Accumulator` actor.
//!
//! Structured arguments and results are MessagePack; "object" means an object argument.

use reef_guest::prelude::*;

/// `sum_slice(xs: object of f64, start: u64, end: u64) -> f64`: sums `xs[start..end]`
/// through a zero-copy view (with the SDK's SIMD sum).
fn sum_slice(args: &Args) -> Result<f64> {
    let view = args.view(0)?;
    let xs = view.as_f64s()?;
    let range = slice_range(args, xs.len())?;
    Ok(reef_guest::f64s::sum(&xs[range]))
}

/// `sum_copy(xs: object of f64, start: u64, end: u64) -> f64`: as `sum_slice`, but
/// copies the object into the guest first (for comparison).
fn sum_copy(args: &Args) -> Result<f64> {
    let bytes = args.bytes(0)?;
    if bytes.len() % 8 != 0 {
        return Err(format!(
            "argument 0: {} bytes is not a whole number of f64s",
            bytes.len()
        )
        .into());
    }
    let range = slice_range(args, bytes.len() / 8)?;
    Ok(bytes[range.start * 8..range.end * 8]
        .chunks_exact(8)
        .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
        .sum())
}

/// Arguments 1 and 2 as a range inside `0..len`.
fn slice_range(args: &Args, len: usize) -> Result<std::ops::Range<usize>> {
    let (start, end) = (args.u64(1)?, args.u64(2)?);
    if start > end || end > len as u64 {
        return Err(Error::with_code(
            Code::BadArgument,
            format!("range {}..{} is outside 0..{}", start, end, len),
        ));
    }
    Ok(start as usize..end as usize)
}

/// `noop() -> nil`.
fn noop(_args: &Args) -> Result<()> {
    Ok(())
}

/// `echo(data) -> data`: returns argument 0's raw bytes (inline or object) unchanged.
fn echo(args: &Args) -> Result<Output> {
    Ok(Output::bytes(args.bytes(0)?.into_owned()))
}

/// `add(a: f64, b: f64) -> f64`.
fn add(args: &Args) -> Result<f64> {
    Ok(args.f64(0)? + args.f64(1)?)
}

/// `view_len(obj: object) -> u64`: maps a view and returns its length.
fn view_len(args: &Args) -> Result<u64> {
    Ok(args.view(0)?.len() as u64)
}

/// Sum of one byte per 4 KiB page.
fn touch_pages(bytes: &[u8]) -> u64 {
    bytes.iter().step_by(4096).map(|&b| b as u64).sum()
}

/// `touch_view(obj: object) -> u64`: maps a view and sums one byte per 4 KiB page.
fn touch_view(args: &Args) -> Result<u64> {
    Ok(touch_pages(args.view(0)?.as_bytes()))
}

/// `touch_copy(obj: object) -> u64`: as `touch_view`, through a copy (host `get`).
fn touch_copy(args: &Args) -> Result<u64> {
    Ok(touch_pages(&args.bytes(0)?))
}

/// `hold_view(obj: object, ms: u64) -> u64`: maps a view, reads every page, then keeps
/// the view for `ms` milliseconds (so a benchmark can measure many live readers).
fn hold_view(args: &Args) -> Result<u64> {
    let view = args.view(0)?;
    let sum = touch_pages(view.as_bytes());
    std::thread::sleep(std::time::Duration::from_millis(args.u64(1)?));
    Ok(sum)
}

/// `hold_copy(obj: object, ms: u64) -> u64`: as `hold_view`, through a copy.
fn hold_copy(args: &Args) -> Result<u64> {
    let bytes = args.bytes(0)?;
    let sum = touch_pages(&bytes);
    std::thread::sleep(std::time::Duration::from_millis(args.u64(1)?));
    Ok(sum)
}

/// `node_id() -> str`: the node this task runs on.
fn node_id(_args: &Args) -> Result<String> {
    Ok(reef_guest::node_id())
}

/// Actor `Where()`: `node() -> str`, the node it lives on.
struct Where;

impl Actor for Where {
    const METHODS: &'static [&'static str] = &["node"];

    fn new(_args: &Args) -> Result<Self> {
        Ok(Where)
    }

    fn call(&mut self, method: &str, _args: &Args) -> Result<Output> {
        match method {
            "node" => Ok(reef_guest::node_id().into()),
            _ => Err(format!("unknown method {}", method).into()),
        }
    }
}

/// Actor `Accumulator(initial: f64 = 0)`: `add(x: f64) -> f64` (the running total),
/// `total() -> f64`.
struct Accumulator {
    total: f64,
}

impl Actor for Accumulator {
    const METHODS: &'static [&'static str] = &["add", "total"];

    fn new(args: &Args) -> Result<Self> {
        let total = if args.is_nil(0) { 0.0 } else { args.f64(0)? };
        Ok(Accumulator { total })
    }

    fn call(&mut self, method: &str, args: &Args) -> Result<Output> {
        match method {
            "add" => {
                self.total += args.f64(0)?;
                Ok(self.total.into())
            }
            "total" => Ok(self.total.into()),
            _ => Err(format!("unknown method {}", method).into()),
        }
    }
}

reef_guest::export_module! {
    tasks: [sum_slice, sum_copy, noop, echo, add, view_len, touch_view, touch_copy, hold_view, hold_copy, node_id],
    actors: [Accumulator, Where],
}
