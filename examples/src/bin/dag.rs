//! Example (b): a DAG of four levels. Results feed further tasks by
//! reference; the node runs each task as soon as its arguments exist.
//!
//!   make_range(n) ──┬─ square_sum ──┐
//!                   ├─ sum ─────────┼─ combine ─┐
//!                   └─ scale(2) ─ sum ──────────┴─ total
use reef_examples::{cluster, guest};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cluster = cluster().await?;
    let m = cluster.register_file(guest("dag")).await?;
    let n: u64 = 1_000_000;

    let xs = cluster.task(&m, "make_range").arg(n).submit()?;
    let squares = cluster.task(&m, "square_sum").arg(&xs).submit()?;
    let sum = cluster.task(&m, "sum").arg(&xs).submit()?;
    let doubled = cluster.task(&m, "scale").arg(&xs).arg(2.0).submit()?;
    let doubled_sum = cluster.task(&m, "sum").arg(&doubled).submit()?;
    let combined = cluster
        .task(&m, "combine")
        .arg(&squares)
        .arg(&sum)
        .submit()?;
    let total = cluster
        .task(&m, "total")
        .arg(&combined)
        .arg(&doubled_sum)
        .submit()?;

    let total: f64 = cluster.get(&total).await?;
    let nf = n as f64;
    let expected = (nf - 1.0) * nf * (2.0 * nf - 1.0) / 6.0 + 3.0 * (nf - 1.0) * nf / 2.0;
    println!("sum of squares + sum + 2*sum over 0..{n} = {total:e} (expected {expected:e})");
    anyhow::ensure!(
        ((total - expected) / expected).abs() < 1e-9,
        "wrong DAG result"
    );
    Ok(())
}
