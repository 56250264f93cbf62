//! Nested guest: tasks that submit tasks and use actors from inside a task.
//!
//! Module `""` in `submit`/`actor_create` means "this module".

use reef_guest::prelude::*;
use reef_guest::{actor_create, actor_lookup, get_value, submit};

/// `add(a: f64, b: f64) -> f64`.
fn add(args: &Args) -> Result<f64> {
    Ok(args.f64(0)? + args.f64(1)?)
}

/// `square(x: f64) -> f64`.
fn square(args: &Args) -> Result<f64> {
    let x = args.f64(0)?;
    Ok(x * x)
}

/// Waits for each submitted task's result object and sums the f64s.
fn sum_results(ids: &[u64]) -> Result<f64> {
    let mut total = 0.0;
    for &id in ids {
        total += get_value(id)?
            .as_f64()
            .ok_or_else(|| Error::new(format!("result {} is not a number", id)))?;
    }
    Ok(total)
}

/// `fan_out(n: u64) -> f64`: submits `square(i)` for i in 0..n, then sums the results
/// (= (n-1) n (2n-1) / 6).
fn fan_out(args: &Args) -> Result<f64> {
    let n = args.u64(0)?;
    let ids = (0..n)
        .map(|i| submit("", "square", &[Arg::from(i as f64)]))
        .collect::<Result<Vec<u64>>>()?;
    sum_results(&ids)
}

/// `fan_out_add(n: u64) -> f64`: submits `add(i, 1)` for i in 0..n and sums the
/// results (= n (n+1) / 2).
fn fan_out_add(args: &Args) -> Result<f64> {
    let n = args.u64(0)?;
    let ids = (0..n)
        .map(|i| submit("", "add", &[Arg::from(i as f64), Arg::from(1.0)]))
        .collect::<Result<Vec<u64>>>()?;
    sum_results(&ids)
}

/// `part_sum(xs: object of f64, start: u64, end: u64) -> f64`: sums `xs[start..end]` via a view.
fn part_sum(args: &Args) -> Result<f64> {
    let view = args.view(0)?;
    let xs = view.as_f64s()?;
    let (start, end) = (args.u64(1)? as usize, args.u64(2)? as usize);
    xs.get(start..end).map(|s| s.iter().sum()).ok_or_else(|| {
        Error::new(format!(
            "range {}..{} is outside 0..{}",
            start,
            end,
            xs.len()
        ))
    })
}

/// `split_sum(xs: object of f64, parts: u64) -> f64`: passes the object by reference to
/// `parts` `part_sum` tasks and adds their results.
fn split_sum(args: &Args) -> Result<f64> {
    let xs = args.object(0)?;
    let parts = args.u64(1)?.max(1);
    let n = xs.size / 8;
    let ids = (0..parts)
        .map(|p| {
            let (start, end) = (n * p / parts, n * (p + 1) / parts);
            submit(
                "",
                "part_sum",
                &[Arg::object(xs), Arg::from(start), Arg::from(end)],
            )
        })
        .collect::<Result<Vec<u64>>>()?;
    sum_results(&ids)
}

/// `use_actor(n: u64, name: str = nil) -> f64`: creates a `Counter` of this module
/// (named `name` if given), calls `add(i)` for i in 1..=n, returns `total()` (= n (n+1) / 2).
fn use_actor(args: &Args) -> Result<f64> {
    let n = args.u64(0)?;
    let name = if args.is_nil(1) {
        None
    } else {
        Some(args.string(1)?)
    };
    let counter = actor_create("", "Counter", &[Arg::from(0.0)], name.as_deref())?;
    for i in 1..=n {
        counter.call("add", &[Arg::from(i as f64)])?;
    }
    counter
        .call_value("total", &[])?
        .as_f64()
        .ok_or_else(|| Error::new("total is not a number"))
}

/// `call_named(name: str, x: f64) -> f64`: looks up a named `Counter`, adds `x`, returns the new total.
fn call_named(args: &Args) -> Result<f64> {
    let counter = actor_lookup(&args.string(0)?)?;
    counter
        .call_value("add", &[Arg::from(args.f64(1)?)])?
        .as_f64()
        .ok_or_else(|| Error::new("add returned a non-number"))
}

/// `flaky(name: str, failures: u64, pause_ms: u64 = 0) -> f64`: adds 1 to the named
/// `Counter` and fails with GUEST_ERROR while its total is at most `failures`, so the
/// first `failures` attempts of a retried task fail and the next returns the total
/// (after sleeping `pause_ms`).
fn flaky(args: &Args) -> Result<f64> {
    let counter = actor_lookup(&args.string(0)?)?;
    let total = counter
        .call_value("add", &[Arg::from(1.0)])?
        .as_f64()
        .ok_or_else(|| Error::new("add returned a non-number"))?;
    if total <= args.u64(1)? as f64 {
        return Err(Error::new(format!("flaky: call {} fails", total)));
    }
    if !args.is_nil(2) {
        std::thread::sleep(std::time::Duration::from_millis(args.u64(2)?));
    }
    Ok(total)
}

/// `pause(ms: u64, x: f64) -> f64`: sleeps `ms` milliseconds (no CPU spent), then returns x.
fn pause(args: &Args) -> Result<f64> {
    std::thread::sleep(std::time::Duration::from_millis(args.u64(0)?));
    args.f64(1)
}

/// Actor `Counter(initial: f64 = 0)`: `add(x: f64) -> f64` (new total), `total() -> f64`,
/// `slow_add(x: f64, ms: u64) -> f64` (adds after sleeping `ms`), `crash()` (traps: a
/// failure of the instance, not an error it returns).
struct Counter {
    total: f64,
}

impl Actor for Counter {
    const METHODS: &'static [&'static str] = &["add", "total", "slow_add", "crash"];

    fn new(args: &Args) -> Result<Self> {
        let total = if args.is_nil(0) { 0.0 } else { args.f64(0)? };
        Ok(Counter { total })
    }

    fn call(&mut self, method: &str, args: &Args) -> Result<Output> {
        match method {
            "add" => {
                self.total += args.f64(0)?;
                Ok(self.total.into())
            }
            "slow_add" => {
                std::thread::sleep(std::time::Duration::from_millis(args.u64(1)?));
                self.total += args.f64(0)?;
                Ok(self.total.into())
            }
            "crash" => core::arch::wasm32::unreachable(),
            _ => Ok(self.total.into()),
        }
    }
}

reef_guest::export_module! {
    tasks: [add, square, fan_out, fan_out_add, part_sum, split_sum, use_actor, call_named, flaky, pause],
    actors: [Counter],
}
