//! Example (a), the seed demo: a 64 MiB array of f64 put once, four tasks
//! summing disjoint quarters through zero-copy views, and an accumulator actor.

use reef_examples::{cluster, guest};

const N: u64 = 8_000_000;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cluster = cluster().await?;
    let module = cluster.register_file(guest("demo")).await?;

    let xs: Vec<f64> = (0..N).map(|i| i as f64).collect();
    let data = cluster.put_f64s(&xs).await?;
    println!(
        "put {} MB once (object {:#x}, {})",
        N * 8 / 1_000_000,
        data.id(),
        if cluster.is_same_machine() {
            "copied once by the node into its shared-memory store"
        } else {
            "sent over the socket"
        }
    );

    let quarter = N / 4;
    let parts = (0..4)
        .map(|q| {
            cluster
                .task(&module, "sum_slice")
                .arg(&data)
                .arg(q * quarter)
                .arg((q + 1) * quarter)
                .submit()
        })
        .collect::<reef::Result<Vec<_>>>()?;
    let sums: Vec<f64> = cluster.get_many(&parts).await?;
    for (q, s) in sums.iter().enumerate() {
        println!("partial sum {q}: {s:.1e} ({s})");
    }
    let total: f64 = sums.iter().sum();
    println!("total: {total:.1e} ({total})");

    let acc = cluster.actor(&module, "Accumulator").create().await?;
    for x in [10.0, 5.0, 100.0] {
        let total: f64 = cluster.get(&acc.call("add").arg(x).submit()?).await?;
        println!("accumulator add {x} -> {total}");
    }
    Ok(())
}
