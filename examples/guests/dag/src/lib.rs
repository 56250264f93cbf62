//! DAG guest: tasks that chain through objects, for multi-level task graphs.
//!
//! A typical 3-level DAG: `make_range(n)` -> objects; `square_sum(obj)` / `sum(obj)` /
//! `scale(obj, k)` per object; `combine(a, b)` / `total(xs...)` over the sums.

use reef_guest::prelude::*;

/// `make_range(n: u64) -> object`: an object holding the f64s `0.0, 1.0, ..., n-1`
/// (little-endian), stored with `put_f64s` and returned by reference.
fn make_range(args: &Args) -> Result<ObjectRef> {
    let n = args.u64(0)?;
    let xs: Vec<f64> = (0..n).map(|i| i as f64).collect();
    reef_guest::put_f64s(&xs)
}

/// `square_sum(xs: object of f64) -> f64`: the sum of squares, through a view.
fn square_sum(args: &Args) -> Result<f64> {
    let view = args.view(0)?;
    Ok(view.as_f64s()?.iter().map(|x| x * x).sum())
}

/// `sum(xs: object of f64) -> f64`: the sum, through a view.
fn sum(args: &Args) -> Result<f64> {
    let view = args.view(0)?;
    Ok(view.as_f64s()?.iter().sum())
}

/// `scale(xs: object of f64, k: f64) -> object`: a new object holding `k * x` for each x.
fn scale(args: &Args) -> Result<ObjectRef> {
    let view = args.view(0)?;
    let k = args.f64(1)?;
    let scaled: Vec<f64> = view.as_f64s()?.iter().map(|x| k * x).collect();
    reef_guest::put_f64s(&scaled)
}

/// `combine(a: f64, b: f64) -> f64`: `a + b` (arguments may be results of other tasks).
fn combine(args: &Args) -> Result<f64> {
    Ok(args.f64(0)? + args.f64(1)?)
}

/// `total(x0: f64, x1: f64, ...) -> f64`: the sum of any number of numbers.
fn total(args: &Args) -> Result<f64> {
    (0..args.len()).map(|i| args.f64(i)).sum()
}

reef_guest::export_module! {
    tasks: [make_range, square_sum, sum, scale, combine, total],
}
