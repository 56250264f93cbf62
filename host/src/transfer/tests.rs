//! Two in-process nodes: a holder serving raw pull connections on loopback
//! and a puller.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::testing::{in_process_node, pattern, put, Proxy, PullServer, TempDir};
use super::Puller;
use crate::error::ErrorCode;
use crate::node::Node;
use crate::store::Data;

const MIB: u64 = 1 << 20;

struct Pair {
    holder: Arc<Node>,
    server: PullServer,
    node: Arc<Node>,
    puller: Puller,
    token: String,
    _dirs: (TempDir, TempDir),
}

async fn pair(holder_store: u64, puller_store: u64) -> Pair {
    let token = reef_proto::auth::generate_token().unwrap();
    let (holder, hd) = in_process_node(holder_store, &token).await.unwrap();
    let (node, nd) = in_process_node(puller_store, &token).await.unwrap();
    let server = PullServer::start(holder.clone()).await.unwrap();
    let puller = Puller::new(node.store(), &token).unwrap();
    Pair {
        holder,
        server,
        node,
        puller,
        token,
        _dirs: (hd, nd),
    }
}

/// An address where nothing listens.
fn dead_address() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().to_string()
}

async fn assert_local(node: &Node, id: u64, expected: &[u8]) -> Arc<Data> {
    let data = node.store().get(id).await.unwrap();
    assert_eq!(data.len(), expected.len() as u64, "object {id:#x}");
    assert!(data.as_slice() == expected, "object {id:#x}: bytes differ");
    data
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfer_pulls_large_odd_and_small_objects() {
    let p = pair(256 * MIB, 256 * MIB).await;
    let sizes = [
        64 * MIB,
        4 * MIB + 1,
        12 * MIB - 4095,
        100 << 10,       // exactly the inline threshold: arena
        (100 << 10) - 1, // heap
        1000,
        1,
        0,
    ];
    let mut total = 0;
    for (i, &size) in sizes.iter().enumerate() {
        let id = 100 + i as u64;
        put(&p.holder, id, &pattern(size as usize, id)).unwrap();
        p.puller
            .pull(id, size, vec![p.server.address.clone()])
            .await
            .unwrap_or_else(|e| panic!("{size} bytes: {e}"));
        let data = assert_local(&p.node, id, &pattern(size as usize, id)).await;
        let in_arena = matches!(*data, Data::Arena(_));
        assert_eq!(in_arena, size >= 100 << 10, "{size} bytes");
        total += size;
        assert_eq!(p.puller.bytes_pulled(), total);
        assert_eq!(p.puller.pull_count(id), 1);
    }
    // A second pull of a local object moves nothing.
    p.puller
        .pull(100, 64 * MIB, vec![p.server.address.clone()])
        .await
        .unwrap();
    assert_eq!(p.puller.bytes_pulled(), total);
    assert_eq!(p.puller.transfers(), sizes.len() as u64);
    // The pulled object has one reference: releasing it frees it.
    let used = p.node.store().arena().used();
    p.node.store().release(100);
    assert!(!p.node.store().contains(100));
    assert_eq!(p.node.store().arena().used(), used - 64 * MIB);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfer_of_one_id_is_shared_by_concurrent_pulls() {
    let p = pair(128 * MIB, 128 * MIB).await;
    let size = 32 * MIB + 17;
    put(&p.holder, 7, &pattern(size as usize, 7)).unwrap();
    let pulls = (0..8).map(|_| p.puller.pull_once(7, size, vec![p.server.address.clone()]));
    let started: Vec<bool> = futures::future::join_all(pulls)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(started.iter().filter(|s| **s).count(), 1, "{started:?}");
    // Already here: nothing to do, and not the transfer's caller.
    let again = p.puller.pull_once(7, size, vec![p.server.address.clone()]);
    assert!(!again.await.unwrap());
    assert_eq!(p.puller.bytes_pulled(), size, "each byte pulled once");
    assert_eq!(p.puller.pull_count(7), 1);
    assert_eq!(p.puller.in_progress(), 0);
    assert_local(&p.node, 7, &pattern(size as usize, 7)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfer_fills_a_placeholder_and_keeps_its_references() {
    let p = pair(64 * MIB, 64 * MIB).await;
    let size = 2 * MIB + 3;
    put(&p.holder, 9, &pattern(size as usize, 9)).unwrap();
    p.node.store().create_pending(9, 2).unwrap();
    let waiter = {
        let node = p.node.clone();
        tokio::spawn(async move { node.store().get(9).await.map(|d| d.len()) })
    };
    p.puller
        .pull(9, size, vec![p.server.address.clone()])
        .await
        .unwrap();
    assert_eq!(waiter.await.unwrap().unwrap(), size);
    p.node.store().release(9);
    assert!(
        p.node.store().contains(9),
        "the placeholder's two references stay"
    );
    p.node.store().release(9);
    assert!(!p.node.store().contains(9));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfer_resumes_on_the_next_holder_when_one_dies_mid_stream() {
    let p = pair(128 * MIB, 128 * MIB).await;
    let size = 48 * MIB + 5;
    let bytes = pattern(size as usize, 3);
    put(&p.holder, 3, &bytes).unwrap();
    // A second holder with its own copy.
    let (second, _sd) = in_process_node(128 * MIB, &p.token).await.unwrap();
    put(&second, 3, &bytes).unwrap();
    let second_server = PullServer::start(second.clone()).await.unwrap();
    // The first holder "dies" (its connection is cut) after ~10 MiB.
    let proxy = Proxy::start(&p.server.address).await.unwrap();
    proxy.cut_after(10 * MIB);
    let start = Instant::now();
    p.puller
        .pull(
            3,
            size,
            vec![proxy.address.clone(), second_server.address.clone()],
        )
        .await
        .unwrap();
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    assert_local(&p.node, 3, &bytes).await;
    let before_cut = proxy.forwarded();
    assert!(before_cut >= 10 * MIB, "{before_cut}");
    // Resumed, not restarted: every byte counted once.
    assert_eq!(p.puller.bytes_pulled(), size);
    assert_eq!(p.puller.pull_count(3), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfer_gives_up_on_a_hung_holder() {
    let token = reef_proto::auth::generate_token().unwrap();
    let (holder, _hd) = in_process_node(64 * MIB, &token).await.unwrap();
    let (second, _sd) = in_process_node(64 * MIB, &token).await.unwrap();
    let (node, _nd) = in_process_node(64 * MIB, &token).await.unwrap();
    let size = 8 * MIB;
    let bytes = pattern(size as usize, 5);
    put(&holder, 5, &bytes).unwrap();
    put(&second, 5, &bytes).unwrap();
    let server = PullServer::start(holder).await.unwrap();
    let second_server = PullServer::start(second).await.unwrap();
    let proxy = Proxy::start(&server.address).await.unwrap();
    proxy.freeze();
    let puller = Puller::new(node.store(), &token)
        .unwrap()
        // Long enough that the healthy holder never looks hung on a loaded machine.
        .with_progress_timeout(Duration::from_millis(1500));
    let start = Instant::now();
    puller
        .pull(
            5,
            size,
            vec![proxy.address.clone(), second_server.address.clone()],
        )
        .await
        .unwrap();
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(1500) && took < Duration::from_secs(6),
        "{took:?}"
    );
    assert_local(&node, 5, &bytes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfer_fails_with_object_lost_when_every_holder_is_gone() {
    let p = pair(64 * MIB, 64 * MIB).await;
    let size = 16 * MIB;
    put(&p.holder, 11, &pattern(size as usize, 11)).unwrap();
    let proxy = Proxy::start(&p.server.address).await.unwrap();
    proxy.cut_after(4 * MIB);
    let dead = dead_address();
    let start = Instant::now();
    let err = p
        .puller
        .pull(11, size, vec![proxy.address.clone(), dead.clone()])
        .await
        .unwrap_err();
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(err.code, ErrorCode::ObjectLost, "{err}");
    assert!(err.message.contains("0xb"), "{err}");
    assert!(err.message.contains(&proxy.address), "{err}");
    assert!(err.message.contains(&dead), "{err}");
    // Nothing half-written is visible, and the destination was freed.
    assert!(!p.node.store().contains(11));
    assert_eq!(p.node.store().arena().used(), 0);
    assert_eq!(p.puller.in_progress(), 0);
    // No holders at all: the same error, at once.
    let err = p.puller.pull(12, size, vec![]).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::ObjectLost, "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfer_of_an_unknown_object_is_a_clear_error() {
    let p = pair(16 * MIB, 16 * MIB).await;
    let err = p
        .puller
        .pull(0x42, 100, vec![p.server.address.clone()])
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::ObjectLost, "{err}");
    assert!(err.message.contains("UNKNOWN_OBJECT"), "{err}");
    // A wrong token is refused, by name.
    let stranger = Puller::new(p.node.store(), "not-the-token").unwrap();
    put(&p.holder, 0x43, b"hello").unwrap();
    let err = stranger
        .pull(0x43, 5, vec![p.server.address.clone()])
        .await
        .unwrap_err();
    assert!(err.message.contains("token"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfer_restores_spilled_objects() {
    let p = pair(8 * MIB, 16 * MIB).await;
    let size = 3 * MIB;
    for id in 1..=3u64 {
        put(&p.holder, id, &pattern(size as usize, id)).unwrap();
    }
    assert!(
        p.holder.store().stats().spilled_bytes > 0,
        "object 1 was spilled"
    );
    // A spilled object is pulled like any other.
    p.puller
        .pull(2, size, vec![p.server.address.clone()])
        .await
        .unwrap();
    assert_local(&p.node, 2, &pattern(size as usize, 2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfer_reconnects_when_the_holder_closed_an_idle_connection() {
    let p = pair(64 * MIB, 64 * MIB).await;
    let address = p.server.address.clone();
    for id in [21u64, 22] {
        put(&p.holder, id, &pattern(MIB as usize, id)).unwrap();
    }
    p.puller.pull(21, MIB, vec![address.clone()]).await.unwrap();
    // The holder goes away (closing the connection the puller kept) and
    // comes back on the same port.
    let Pair { server, .. } = p;
    drop(server);
    let start = Instant::now();
    let server = loop {
        match PullServer::start_at(p.holder.clone(), &address).await {
            Ok(server) => break server,
            Err(e) if start.elapsed() < Duration::from_secs(5) => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("{e:#}"),
        }
    };
    p.puller.pull(22, MIB, vec![address.clone()]).await.unwrap();
    assert_local(&p.node, 22, &pattern(MIB as usize, 22)).await;
    assert_eq!(p.puller.bytes_pulled(), 2 * MIB);
    drop(server);
}

/// `cargo test --release -p reef-host transfer_bench -- --ignored --nocapture`
/// (1, 2 and 4 stripes, interleaved so a busy machine disturbs each alike).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn transfer_bench_1gib() {
    for _ in 0..2 {
        for stripes in [1, 2, 4] {
            let figures = super::testing::bench_pull(1 << 30, stripes, 3)
                .await
                .unwrap();
            let best = figures.iter().map(|f| f.bytes_per_sec).fold(0.0, f64::max);
            let all: Vec<String> = figures
                .iter()
                .map(|f| {
                    format!(
                        "{:.2} GB/s {:.2} cpu-s/GiB",
                        f.bytes_per_sec / 1e9,
                        f.cpu_secs_per_gib
                    )
                })
                .collect();
            println!(
                "1 GiB pull, {stripes} stripe(s): best {:.2} GB/s; rounds: {}",
                best / 1e9,
                all.join("; ")
            );
        }
    }
}
