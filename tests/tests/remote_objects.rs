//! Large objects from a driver that does not use shared memory (as on
//! another machine): streamed over raw TCP connections to the node's port,
//! here over loopback with the same-machine path turned off.

use std::time::{Duration, Instant};

use reef::{Cluster, ConnectOptions};
use reef_core::wire::{self, Kind, Request};
use reef_proto as pb;
use reef_proto::client_op::Op;
use reef_proto::server_reply::Body;
use reef_testkit::{guest, HostProcess};
use tokio::io::AsyncWriteExt;

async fn remote(node: &HostProcess) -> Cluster {
    let options = ConnectOptions::default()
        .token(&node.token())
        .same_machine(false);
    let cluster = Cluster::connect_with(&node.address, options).await.unwrap();
    assert!(!cluster.is_same_machine());
    cluster
}

/// Deterministic bytes that differ everywhere (xorshift64*).
fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        let word = x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes();
        let n = word.len().min(len - out.len());
        out.extend_from_slice(&word[..n]);
    }
    out
}

/// FNV-1a over 8-byte words (and the tail): a checksum of every byte and its place.
fn checksum(bytes: &[u8]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    let mut words = bytes.chunks_exact(8);
    for w in &mut words {
        h = (h ^ u64::from_le_bytes(w.try_into().unwrap())).wrapping_mul(0x100_0000_01b3);
    }
    for b in words.remainder() {
        h = (h ^ *b as u64).wrapping_mul(0x100_0000_01b3);
    }
    h
}

async fn arena_used(cluster: &Cluster) -> u64 {
    cluster.status().await.unwrap().store.unwrap().arena_used
}

/// Waits (at most 10 s) until the arena is back to `used` bytes.
async fn arena_back_to(cluster: &Cluster, used: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = arena_used(cluster).await;
        if now == used {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the arena holds {now} bytes, {used} before the put"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_large_object_round_trips_over_tcp_without_the_arena() {
    let dir = tempfile::tempdir().unwrap();
    let node = HostProcess::start(dir.path(), &["--object-store-memory", "320MiB"]);
    let cluster = remote(&node).await;
    let before = arena_used(&cluster).await;

    // 128 MiB of f64s 0..n (several stripes; the tests of this file run at
    // once, so each keeps its memory modest): the guest's sum checks the
    // node's copy, the checksum the copy that comes back.
    let n = 16 << 20;
    let xs: Vec<f64> = (0..n).map(|i| i as f64).collect();
    // SAFETY: f64 has no padding; little-endian like the guests.
    let bytes = unsafe { std::slice::from_raw_parts(xs.as_ptr() as *const u8, n * 8) };
    let started = Instant::now();
    let obj = cluster.put_f64s(&xs).await.unwrap();
    let put = started.elapsed();
    assert!(arena_used(&cluster).await >= before + bytes.len() as u64);

    let demo = cluster.register_file(guest("demo")).await.unwrap();
    let sum = cluster
        .task(&demo, "sum_slice")
        .arg(&obj)
        .arg(0u64)
        .arg(n as u64)
        .memory_limit(1 << 30)
        .submit()
        .unwrap();
    let expected = (n as f64 - 1.0) * n as f64 / 2.0;
    assert_eq!(cluster.get::<f64>(&sum).await.unwrap(), expected);

    let started = Instant::now();
    let back = cluster.get_bytes(&obj).await.unwrap();
    let get = started.elapsed();
    assert!(!back.is_zero_copy());
    assert_eq!(back.len(), bytes.len());
    assert_eq!(checksum(&back), checksum(bytes));
    eprintln!("remote put of 128 MiB: {put:?}, get: {get:?}");

    // Patterned bytes of an odd size (not a multiple of a page or a word).
    let odd = pattern((3 << 20) + 12_345, 7);
    let r = cluster.put_bytes(&odd).await.unwrap();
    assert_eq!(
        checksum(&cluster.get_bytes(&r).await.unwrap()),
        checksum(&odd)
    );

    // Small objects stay inline (no arena block).
    let small = pattern(1000, 3);
    let used = arena_used(&cluster).await;
    let r = cluster.put_bytes(&small).await.unwrap();
    assert_eq!(arena_used(&cluster).await, used);
    assert_eq!(&cluster.get_bytes(&r).await.unwrap()[..], &small[..]);
}

#[tokio::test]
async fn a_put_dropped_mid_stream_leaves_no_buffer_behind() {
    let dir = tempfile::tempdir().unwrap();
    let node = HostProcess::start(dir.path(), &["--object-store-memory", "320MiB"]);
    let cluster = remote(&node).await;
    let before = arena_used(&cluster).await;
    let data = pattern(128 << 20, 11);
    let size = data.len() as u64;

    // The put is dropped as soon as the node holds its buffer (mid-stream:
    // the bytes take far longer than the polls).
    let mut dropped = false;
    for _ in 0..3 {
        let put = cluster.put_bytes(&data);
        tokio::pin!(put);
        let watch = async {
            loop {
                if arena_used(&cluster).await >= before + size {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        };
        tokio::select! {
            done = &mut put => { drop(done.unwrap()); }
            () = watch => { dropped = true; }
        }
        if dropped {
            break;
        }
        // The put won the race: try again.
        arena_back_to(&cluster, before).await;
    }
    assert!(dropped, "every put completed before it could be dropped");
    arena_back_to(&cluster, before).await;

    // The session is intact: a whole put and get work.
    let r = cluster.put_bytes(&data).await.unwrap();
    assert_eq!(
        checksum(&cluster.get_bytes(&r).await.unwrap()),
        checksum(&data)
    );
    drop(r);
    arena_back_to(&cluster, before).await;
}

/// A driver session opened by hand, to speak the protocol the driver hides.
struct RawSession {
    ops: tokio::sync::mpsc::UnboundedSender<pb::ClientBatch>,
    replies: tonic::Streaming<pb::ServerBatch>,
    prefix: u64,
}

impl RawSession {
    async fn open(node: &HostProcess) -> RawSession {
        let channel = reef_core::channel::connect(&node.address).await.unwrap();
        let token = reef_proto::auth::AttachToken::new(&node.token()).unwrap();
        let mut client = pb::node_client::NodeClient::with_interceptor(channel, token);
        let (ops, rx) = tokio::sync::mpsc::unbounded_channel();
        let mut replies = client
            .session(tokio_stream::wrappers::UnboundedReceiverStream::new(rx))
            .await
            .unwrap()
            .into_inner();
        let hello = replies.message().await.unwrap().unwrap().replies.remove(0);
        let Some(Body::Hello(hello)) = hello.body else {
            panic!("no hello")
        };
        RawSession {
            ops,
            replies,
            prefix: hello.id_prefix,
        }
    }

    async fn request(&mut self, op: Op) -> Body {
        self.ops
            .send(pb::ClientBatch {
                ops: vec![pb::ClientOp { op: Some(op) }],
            })
            .unwrap();
        let reply = self
            .replies
            .message()
            .await
            .unwrap()
            .unwrap()
            .replies
            .remove(0);
        reply.body.unwrap()
    }
}

#[tokio::test]
async fn a_push_past_the_declared_size_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let node = HostProcess::start(dir.path(), &["--object-store-memory", "128MiB"]);
    let cluster = remote(&node).await;
    let before = arena_used(&cluster).await;
    let mut session = RawSession::open(&node).await;
    let id = reef_core::IdPrefix(session.prefix).object(1).0;

    // Larger than the whole store: refused before anything is allocated.
    let body = session
        .request(Op::CreateBuffer(pb::CreateBuffer {
            req_id: 1,
            id,
            size: 1 << 30,
            stream: true,
            copy_from: 0,
        }))
        .await;
    let Body::Error(e) = body else {
        panic!("a 1 GiB buffer in a 128 MiB store: {body:?}")
    };
    assert_eq!(e.code, pb::ErrorCode::StoreFull as i32, "{e:?}");

    let size = 4u64 << 20;
    let body = session
        .request(Op::CreateBuffer(pb::CreateBuffer {
            req_id: 2,
            id,
            size,
            stream: true,
            copy_from: 0,
        }))
        .await;
    assert!(matches!(body, Body::Buffer(_)), "{body:?}");
    assert!(arena_used(&cluster).await >= before + size);

    // One byte more than declared.
    let mut conn = tokio::net::TcpStream::connect(&node.address).await.unwrap();
    let mut request = Vec::new();
    Request {
        kind: Kind::Push,
        auth: format!("Bearer {}", node.token()).into_bytes(),
        id,
        offset: 0,
        end: size + 1,
    }
    .write_to(&mut request)
    .unwrap();
    conn.write_all(&request).await.unwrap();
    let (status, message) = wire::read_reply_async(&mut conn)
        .await
        .unwrap()
        .expect_err("an over-declared push was accepted");
    let e = wire::reply_error(status, &message);
    assert_eq!(e.code, reef::ErrorCode::BadArgument, "{e}");
    assert!(e.message.contains("declared size"), "{e}");

    // The refused put was discarded: its buffer is freed, it cannot be sealed.
    arena_back_to(&cluster, before).await;
    let body = session.request(Op::Seal(pb::Seal { req_id: 3, id })).await;
    let Body::Error(e) = body else {
        panic!("a discarded put was sealed: {body:?}")
    };
    assert_eq!(e.code, pb::ErrorCode::BadArgument as i32, "{e:?}");
}
