//! Example: one DAG over every node of a cluster (see README, "A cluster on
//! one machine"). Tasks are spread over the nodes; each scaled copy of a
//! 64 MB array is made on one node and summed on another, so the object moves
//! between nodes (once) only because a task needs it there. Then a placement
//! group with one bundle per node, an actor in each bundle, and a named actor
//! found by name.
use reef::{PlacementStrategy, Strategy};
use reef_examples::{cluster, guest};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cluster = cluster().await?;
    let status = cluster.status().await?;
    println!("cluster of {} nodes:", status.nodes.len());
    for n in &status.nodes {
        println!("  {} at {} ({})", n.node_id, n.address, n.state);
    }
    let m = cluster.register_file(guest("dag")).await?;
    let n: u64 = 8_000_000;
    let xs = cluster.task(&m, "make_range").arg(n).submit()?;
    let ids: Vec<String> = status.nodes.iter().map(|n| n.node_id.clone()).collect();
    let mut sums = Vec::new();
    for k in 0..6u64 {
        // Scale on one node, sum on the next (round robin over the nodes).
        let on = |i: u64| Strategy::NodeAffinity {
            node_id: ids[(i as usize) % ids.len()].clone(),
            soft: true,
        };
        let scaled = cluster
            .task(&m, "scale")
            .arg(&xs)
            .arg(k as f64)
            .strategy(on(k))
            .submit()?;
        sums.push(
            cluster
                .task(&m, "sum")
                .arg(&scaled)
                .strategy(on(k + 1))
                .submit()?,
        );
    }
    let spread: Vec<_> = (0..300u64)
        .map(|i| {
            cluster
                .task(&m, "combine")
                .arg(i as f64)
                .arg(1.0)
                .strategy(Strategy::Spread)
                .submit()
        })
        .collect::<reef::Result<_>>()?;
    let base = (n - 1) as f64 * n as f64 / 2.0;
    for (k, sum) in sums.iter().enumerate() {
        let got: f64 = cluster.get(sum).await?;
        println!("sum of {k} * (0..{n}) = {got:e}");
        anyhow::ensure!(got == base * k as f64, "wrong sum for k = {k}");
    }
    let spread: Vec<f64> = cluster.get_many(&spread).await?;
    anyhow::ensure!(spread.iter().enumerate().all(|(i, v)| *v == i as f64 + 1.0));
    println!("300 spread tasks: ok");
    for n in cluster.status().await?.nodes {
        println!("  {}: object store {} bytes used", n.address, n.store_used);
    }

    // One bundle of one CPU on every node, all or nothing; an actor in each.
    let demo = cluster.register_file(guest("demo")).await?;
    let mut group = cluster.placement_group(PlacementStrategy::StrictSpread);
    for _ in &ids {
        group = group.bundle([("CPU", 1.0)]);
    }
    let mut pg = group.create().await?;
    pg.ready(std::time::Duration::from_secs(10)).await?;
    for (i, node) in pg.bundle_nodes().to_vec().iter().enumerate() {
        let actor = cluster
            .actor(&demo, "Where")
            .num_cpus(1.0)
            .strategy(pg.bundle(i as u32))
            .create()
            .await?;
        let home: String = cluster.get(&actor.call("node").submit()?).await?;
        println!("bundle {i}: reserved on {node}, its actor lives on {home}");
        anyhow::ensure!(&home == node, "the actor is not in its bundle");
    }
    pg.remove().await?; // frees the CPUs and stops the actors in it
    let acc = cluster
        .actor(&demo, "Accumulator")
        .name("cluster-example-totals")
        .strategy(Strategy::Spread)
        .create()
        .await?;
    let found = cluster.get_actor("cluster-example-totals").await?;
    let total: f64 = cluster.get(&found.call("add").arg(42.0).submit()?).await?;
    println!("named actor {}: total {total}", found.id());
    acc.kill().await?;
    Ok(())
}
