//! Example (c): a guest that submits tasks and calls actors itself.
use reef_examples::{cluster, guest};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cluster = cluster().await?;
    let m = cluster.register_file(guest("nested")).await?;

    let n: u64 = 50;
    let r = cluster.task(&m, "fan_out").arg(n).submit()?;
    let squares: f64 = cluster.get(&r).await?;
    println!("fan_out({n}): a guest submitted {n} `square` tasks and summed them: {squares}");

    let r = cluster.task(&m, "use_actor").arg(100u64).submit()?;
    let total: f64 = cluster.get(&r).await?;
    println!("use_actor(100): a guest created a Counter actor and called it 100 times: {total}");
    Ok(())
}
