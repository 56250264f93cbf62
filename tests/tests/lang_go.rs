//! The Go guest SDK (guest-sdk/go): the seed demo, small tasks, a Go panic, and the
//! Go piece of the cross-language pipeline (`merge_counts`), against real nodes.

use std::collections::BTreeMap;

use reef::{Arg, ErrorCode};
use reef_tests::{assert_seed_demo, guest, node};

#[tokio::test]
async fn go_seed_demo() {
    let cluster = node().await;
    assert_seed_demo(&cluster, &guest("go_demo")).await;
}

#[tokio::test]
async fn go_module_describes_itself() {
    let cluster = node().await;
    let m = cluster.register_file(guest("go_demo")).await.unwrap();
    assert!(m.sdk.starts_with("reef-guest-go/"), "{}", m.sdk);
    for task in ["sum_slice", "noop", "echo", "add", "fail"] {
        assert!(m.tasks.iter().any(|t| t == task), "{task}: {:?}", m.tasks);
    }
    assert_eq!(
        m.actors,
        vec![(
            "Accumulator".to_string(),
            vec!["add".to_string(), "total".to_string()]
        )]
    );
}
