//! A driver for the jobs tests, run by `host job submit`: connects to
//! `$REEF_ADDRESS` (with `$REEF_TOKEN`, as a submitted job's command is
//! given), runs `TASKS` (default 20) tasks that pause 20 ms each, waits for
//! them with a progress callback, prints what it saw and the sum, and fails
//! when the progress went down or did not end at the total.

#[tokio::main]
async fn main() {
    let address = std::env::var("REEF_ADDRESS").expect("$REEF_ADDRESS");
    let n: usize = std::env::var("TASKS").map_or(20, |v| v.parse().expect("TASKS"));
    let cluster = reef::Cluster::connect(&address).await.expect("connecting");
    let m = cluster
        .register_file(reef_testkit::guest("nested"))
        .await
        .expect("registering nested");
    let refs: Vec<_> = (0..n)
        .map(|i| {
            cluster
                .task(&m, "pause")
                .arg(20u64)
                .arg(i as f64)
                .submit()
                .expect("submitting")
        })
        .collect();
    let mut seen = Vec::new();
    let values: Vec<f64> = cluster
        .get_many_with_progress(&refs, |done, total| {
            println!("progress {done}/{total}");
            seen.push((done, total));
        })
        .await
        .expect("getting the results");
    assert!(seen.windows(2).all(|w| w[0].0 < w[1].0), "{seen:?}");
    assert_eq!(seen.last(), Some(&(n, n)));
    println!("sum {}", values.iter().sum::<f64>());
}
