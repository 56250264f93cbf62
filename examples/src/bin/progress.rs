//! Example: a progress bar over many results. Submits `$TASKS` (default
//! 200) tasks that each pause 20 ms, and shows with `indicatif` how many
//! results are ready while `get_many_with_progress` waits for them all.
use indicatif::{ProgressBar, ProgressStyle};
use reef_examples::{cluster, guest};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cluster = cluster().await?;
    let m = cluster.register_file(guest("nested")).await?;
    let n: usize = std::env::var("TASKS").map_or(Ok(200), |v| v.parse())?;
    let refs = (0..n)
        .map(|i| cluster.task(&m, "pause").arg(20u64).arg(i as f64).submit())
        .collect::<reef::Result<Vec<_>>>()?;
    let bar = ProgressBar::new(n as u64).with_style(ProgressStyle::with_template(
        "{bar:40} {pos}/{len} tasks [{elapsed_precise}]",
    )?);
    let values: Vec<f64> = cluster
        .get_many_with_progress(&refs, |done, _| bar.set_position(done as u64))
        .await?;
    bar.finish();
    let sum: f64 = values.iter().sum();
    let expected = (n * n.saturating_sub(1) / 2) as f64;
    println!("{n} tasks, sum {sum} (expected {expected})");
    anyhow::ensure!(sum == expected, "wrong sum");
    Ok(())
}
