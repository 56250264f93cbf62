//! The same-machine fast path without the hole: the node's arena is a memfd
//! (no path: nothing in `/dev/shm`, nothing left when the node is killed),
//! and drivers on the node's machine read and write large objects through
//! per-object segments of their own, never the arena.

use std::io::{IoSliceMut, Read, Write};
use std::mem::MaybeUninit;
use std::os::fd::OwnedFd;
use std::path::Path;

use reef::{Cluster, ConnectOptions};
use reef_core::segments;
use reef_proto as pb;
use reef_proto::auth::AttachToken;
use reef_proto::client_op::Op;
use reef_proto::server_reply::Body;
use reef_testkit::{arena, HostProcess};
use rustix::io::Errno;
use rustix::mm::{self, MapFlags, MprotectFlags, ProtFlags};
use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};

/// Entries of `/dev/shm` a node on `port` could have left (the old arena
/// files were `reef-<port>-<id>.arena`).
fn shm_files_of(port: u16) -> Vec<String> {
    std::fs::read_dir("/dev/shm")
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with(&format!("reef-{port}")))
        .collect()
}

#[tokio::test]
async fn a_killed_node_leaves_nothing_in_dev_shm() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = HostProcess::start(dir.path(), &["--object-store-memory", "64MiB"]);
    let cluster = node.connect().await;
    // A large object in the store, so the arena is in use.
    let obj = cluster.put_bytes(&vec![7u8; 4 << 20]).await.unwrap();
    assert_eq!(cluster.get_bytes(&obj).await.unwrap().len(), 4 << 20);

    // The arena exists, as the node's memfd, and only there: its name is
    // no path of the filesystem.
    let fd = arena::of_node(&node.address).unwrap();
    assert_eq!(arena::node_pid(&fd).unwrap(), node.pid());
    let target = std::fs::read_link(&fd).unwrap();
    assert!(
        target.to_string_lossy().starts_with("/memfd:"),
        "{target:?}"
    );
    assert!(!Path::new(&target).exists(), "{target:?} is a path");
    assert_eq!(shm_files_of(node.port), Vec::<String>::new());

    drop(cluster);
    node.kill().unwrap(); // SIGKILL: no clean-up runs
    assert_eq!(shm_files_of(node.port), Vec::<String>::new());
    assert!(
        arena::of_node(&node.address).is_err(),
        "the arena outlived its node"
    );
}

/// A driver session opened by hand, to speak the protocol the driver hides
/// (and to misbehave as a hostile driver would).
struct RawSession {
    ops: tokio::sync::mpsc::UnboundedSender<pb::ClientBatch>,
    replies: tonic::Streaming<pb::ServerBatch>,
    hello: pb::Hello,
    next_id: u64,
}

impl RawSession {
    async fn open(address: &str, token: &str) -> RawSession {
        let channel = reef_core::channel::connect(address).await.unwrap();
        let token = AttachToken::new(token).unwrap();
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
            hello,
            next_id: 1,
        }
    }

    fn new_id(&mut self) -> u64 {
        self.next_id += 1;
        reef_core::IdPrefix(self.hello.id_prefix)
            .object(self.next_id)
            .0
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

    async fn create_buffer(&mut self, id: u64, size: u64) {
        let body = self
            .request(Op::CreateBuffer(pb::CreateBuffer {
                req_id: 1,
                id,
                size,
                ..Default::default()
            }))
            .await;
        assert!(matches!(body, Body::Buffer(_)), "{body:?}");
    }

    /// A put the node copies from this process's memory at `data`.
    async fn copy_in(&mut self, id: u64, addr: u64, size: u64) -> Body {
        self.request(Op::CreateBuffer(pb::CreateBuffer {
            req_id: 4,
            id,
            size,
            copy_from: addr,
            ..Default::default()
        }))
        .await
    }

    async fn seal(&mut self, id: u64) -> Body {
        self.request(Op::Seal(pb::Seal { req_id: 2, id })).await
    }

    async fn get(&mut self, id: u64) -> pb::object_value::Value {
        let body = self
            .request(Op::Get(pb::Get {
                req_id: 3,
                ids: vec![id],
                segments: true,
                ..Default::default()
            }))
            .await;
        let Body::Get(mut reply) = body else {
            panic!("{body:?}")
        };
        reply.values.remove(0).value.unwrap()
    }

    /// Connects to the node's descriptor socket as this session.
    fn descriptors(&self) -> Descriptors {
        Descriptors::connect(&self.hello, self.hello.id_prefix, &self.hello.fd_key)
            .expect("the node refused the session's own key")
    }
}

/// A connection to a node's descriptor socket (`reef_core::segments`).
struct Descriptors(std::os::unix::net::UnixStream);

impl Descriptors {
    /// Presents session `prefix` with `key`; `None` when the node refuses.
    fn connect(hello: &pb::Hello, prefix: u64, key: &[u8]) -> Option<Descriptors> {
        let mut stream = std::os::unix::net::UnixStream::connect(&hello.fd_socket).unwrap();
        stream.write_all(&prefix.to_le_bytes()).unwrap();
        stream.write_all(key).unwrap();
        let mut ok = [0u8; 1];
        match stream.read_exact(&mut ok) {
            Ok(()) if ok[0] == segments::OK => Some(Descriptors(stream)),
            _ => None,
        }
    }

    /// The descriptor of `id`, or the node's error message.
    fn fetch(&mut self, kind: u8, id: u64) -> Result<OwnedFd, String> {
        let mut request = vec![kind];
        request.extend_from_slice(&id.to_le_bytes());
        self.0.write_all(&request).unwrap();
        let mut header = [0u8; segments::REPLY_HEADER_LEN];
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let got = rustix::net::recvmsg(
            &self.0,
            &mut [IoSliceMut::new(&mut header)],
            &mut control,
            RecvFlags::CMSG_CLOEXEC,
        )
        .unwrap()
        .bytes;
        let mut fd = None;
        for message in control.drain() {
            if let RecvAncillaryMessage::ScmRights(fds) = message {
                fd = fds.into_iter().next();
            }
        }
        self.0.read_exact(&mut header[got..]).unwrap();
        let len = u32::from_le_bytes(header[1..].try_into().unwrap()) as usize;
        let mut message = vec![0u8; len];
        self.0.read_exact(&mut message).unwrap();
        match (header[0], fd) {
            (segments::OK, Some(fd)) => Ok(fd),
            _ => Err(String::from_utf8_lossy(&message).into_owned()),
        }
    }
}

/// A shared mapping of `len` bytes of `fd`, unmapped when dropped.
struct Map(*mut std::ffi::c_void, usize);

impl Map {
    fn new(fd: &OwnedFd, len: usize, prot: ProtFlags) -> rustix::io::Result<Map> {
        // SAFETY: a fresh mapping the kernel places; nothing else refers to it.
        let ptr = unsafe { mm::mmap(std::ptr::null_mut(), len, prot, MapFlags::SHARED, fd, 0) }?;
        Ok(Map(ptr, len))
    }
    fn bytes(&self) -> &[u8] {
        // SAFETY: our mapping of `len` readable bytes, alive while `self` is.
        unsafe { std::slice::from_raw_parts(self.0 as *const u8, self.1) }
    }
    fn write(&self, data: &[u8]) {
        // SAFETY: a writable mapping of at least `data.len()` bytes.
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), self.0 as *mut u8, data.len()) }
    }
}

impl Drop for Map {
    fn drop(&mut self) {
        // SAFETY: our own mapping.
        let _ = unsafe { mm::munmap(self.0, self.1) };
    }
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8 + 1).collect()
}

#[tokio::test]
async fn a_sealed_object_is_read_only_and_a_mapped_buffer_is_not_sealed() {
    let dir = tempfile::tempdir().unwrap();
    let node = HostProcess::start(dir.path(), &["--object-store-memory", "64MiB"]);
    let mut session = RawSession::open(&node.address, &node.token()).await;
    let mut fds = session.descriptors();
    let len = 3 << 20;
    let bytes = pattern(len);

    // A driver that keeps its buffer mapped writable cannot seal it: the
    // put fails, typed, and its buffer is gone.
    let kept = session.new_id();
    session.create_buffer(kept, len as u64).await;
    let buffer = fds.fetch(segments::KIND_BUFFER, kept).unwrap();
    let map = Map::new(&buffer, len, ProtFlags::READ | ProtFlags::WRITE).unwrap();
    map.write(&bytes);
    let Body::Error(e) = session.seal(kept).await else {
        panic!("a buffer still mapped writable was sealed")
    };
    assert_eq!(e.code(), pb::ErrorCode::BadArgument, "{e:?}");
    assert!(e.message.contains("still mapped writable"), "{e:?}");
    assert!(fds.fetch(segments::KIND_BUFFER, kept).is_err());
    drop(map);

    // Written, unmapped, sealed: from then on nobody writes it, whatever
    // descriptor they hold.
    let id = session.new_id();
    session.create_buffer(id, len as u64).await;
    let buffer = fds.fetch(segments::KIND_BUFFER, id).unwrap();
    Map::new(&buffer, len, ProtFlags::READ | ProtFlags::WRITE)
        .unwrap()
        .write(&bytes);
    assert!(matches!(session.seal(id).await, Body::Ok(_)));
    assert_eq!(
        rustix::io::pwrite(&buffer, b"forged", 0).unwrap_err(),
        Errno::PERM
    );
    assert!(rustix::fs::ftruncate(&buffer, 0).is_err());
    assert!(Map::new(&buffer, len, ProtFlags::READ | ProtFlags::WRITE).is_err());
    // The buffer's descriptor is not handed out any more.
    assert!(fds.fetch(segments::KIND_BUFFER, id).is_err());

    // A get hands a descriptor that maps read-only only.
    let value = session.get(id).await;
    assert_eq!(value, pb::object_value::Value::Segment(len as u64));
    let object = fds.fetch(segments::KIND_READ, id).unwrap();
    assert!(Map::new(&object, len, ProtFlags::READ | ProtFlags::WRITE).is_err());
    let view = Map::new(&object, len, ProtFlags::READ).unwrap();
    assert_eq!(view.bytes(), &bytes[..]);
    // SAFETY: our own read-only mapping; the call must fail.
    let writable = unsafe { mm::mprotect(view.0, len, MprotectFlags::READ | MprotectFlags::WRITE) };
    assert!(
        writable.is_err(),
        "a sealed object's mapping was made writable"
    );
}

#[tokio::test]
async fn a_put_copied_from_the_driver_reads_only_its_own_memory() {
    let dir = tempfile::tempdir().unwrap();
    let node = HostProcess::start(dir.path(), &["--object-store-memory", "64MiB"]);
    let mut session = RawSession::open(&node.address, &node.token()).await;
    let bytes = pattern(3 << 20);
    let (addr, len) = (bytes.as_ptr() as u64, bytes.len() as u64);

    // Before the session's descriptor connection, the node does not know
    // which process to read.
    let id = session.new_id();
    let Body::Error(e) = session.copy_in(id, addr, len).await else {
        panic!("copied from an unknown process")
    };
    assert!(e.message.contains("descriptor connection"), "{e:?}");

    // Then it copies the bytes out of this process into its arena.
    let mut fds = session.descriptors();
    let copied = session.copy_in(id, addr, len).await;
    assert!(matches!(copied, Body::Ok(_)), "{copied:?}");
    // Read back through a sealed segment of that object alone.
    assert_eq!(
        session.get(id).await,
        pb::object_value::Value::Segment(bytes.len() as u64)
    );
    let object = fds.fetch(segments::KIND_READ, id).unwrap();
    let view = Map::new(&object, bytes.len(), ProtFlags::READ).unwrap();
    assert_eq!(view.bytes(), &bytes[..]);
    // The first get moved the object into that segment: a second get hands
    // out the same one (the same memfd), not another copy.
    assert_eq!(
        session.get(id).await,
        pb::object_value::Value::Segment(bytes.len() as u64)
    );
    let again = fds.fetch(segments::KIND_READ, id).unwrap();
    let inode = |fd: &OwnedFd| rustix::fs::fstat(fd).unwrap().st_ino;
    assert_eq!(inode(&again), inode(&object), "the second get made a copy");

    // An address this process has not mapped: refused, typed; nothing made.
    let bad = session.new_id();
    let Body::Error(refused) = session.copy_in(bad, 4096, 1 << 20).await else {
        panic!("copied from an unmapped address")
    };
    assert_eq!(refused.code(), pb::ErrorCode::BadArgument, "{refused:?}");
    assert!(
        refused.message.contains("cannot read the put's bytes"),
        "{refused:?}"
    );
    let pb::object_value::Value::Error(e) = session.get(bad).await else {
        panic!("a failed put made an object")
    };
    assert_eq!(e.code(), pb::ErrorCode::UnknownObject, "{e:?}");
    // The same for a put large enough to be read by several threads at once.
    let bad = session.new_id();
    let Body::Error(refused) = session.copy_in(bad, 4096, 48 << 20).await else {
        panic!("copied 48 MiB from an unmapped address")
    };
    assert!(
        refused.message.contains("cannot read the put's bytes"),
        "{refused:?}"
    );
    let pb::object_value::Value::Error(e) = session.get(bad).await else {
        panic!("a failed put made an object")
    };
    assert_eq!(e.code(), pb::ErrorCode::UnknownObject, "{e:?}");
    // An id outside the session's range: refused.
    let foreign = reef_core::IdPrefix(session.hello.id_prefix + 1).object(1).0;
    let Body::Error(refused) = session.copy_in(foreign, addr, 4096).await else {
        panic!("a put into another session's id range")
    };
    assert!(
        refused.message.contains("not in this session's id range"),
        "{refused:?}"
    );
}

#[tokio::test]
async fn another_session_gets_no_descriptor_of_an_object_it_was_not_given() {
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let node = HostProcess::start(dirs[0].path(), &["--object-store-memory", "64MiB"]);
    let token_file = |name: &str| {
        let output = dirs[1].path().join(format!("{name}.token"));
        let out = node.admin_cli(&["tenant", "add", name, "--output", output.to_str().unwrap()]);
        assert!(out.status.success(), "{out:?}");
        std::fs::read_to_string(output).unwrap().trim().to_string()
    };
    let (token_a, token_b) = (token_file("team-a"), token_file("team-b"));

    // Tenant A puts through its segment, and reads it back in place.
    let a = Cluster::connect_with(&node.address, ConnectOptions::default().token(&token_a))
        .await
        .unwrap();
    assert!(a.is_same_machine());
    let bytes = pattern(5 << 20);
    let obj = a.put_bytes(&bytes).await.unwrap();
    let back = a.get_bytes(&obj).await.unwrap();
    assert!(back.is_zero_copy());
    assert_eq!(&back[..], &bytes[..]);

    for token in [&token_b, &token_a] {
        // Tenant B, and another session of tenant A that was not given it.
        let mut other = RawSession::open(&node.address, token).await;
        let mut fds = other.descriptors();
        assert!(fds.fetch(segments::KIND_READ, obj.id()).is_err());
        assert!(fds.fetch(segments::KIND_BUFFER, obj.id()).is_err());
        // Nor in the name of A's session: the key is that session's.
        let a_prefix = reef_core::ObjectId(obj.id()).prefix().0;
        assert!(Descriptors::connect(&other.hello, a_prefix, &other.hello.fd_key).is_none());
        assert!(Descriptors::connect(&other.hello, a_prefix, &[0u8; segments::KEY_LEN]).is_none());
        if token == &token_b {
            let pb::object_value::Value::Error(e) = other.get(obj.id()).await else {
                panic!("tenant B read A's object")
            };
            assert_eq!(e.code(), pb::ErrorCode::UnknownObject, "{e:?}");
            assert!(fds.fetch(segments::KIND_READ, obj.id()).is_err());
        }
    }
    // A's object is intact.
    assert_eq!(&a.get_bytes(&obj).await.unwrap()[..], &bytes[..]);
}

/// Objects read by a driver on the node's machine move into segments, which
/// are counted apart from the arena (at most the store's size together):
/// reading more than that, one object after another, spills the least
/// recently read ones, and every object still reads back right.
#[tokio::test]
async fn objects_read_once_each_make_room_for_the_next() {
    let dir = tempfile::tempdir().unwrap();
    let node = HostProcess::start(dir.path(), &["--object-store-memory", "64MiB"]);
    let cluster = node.connect().await;
    assert!(cluster.is_same_machine());
    let datas: Vec<Vec<u8>> = (0..6u8)
        .map(|i| {
            let mut bytes = pattern(20 << 20);
            bytes[0] = i;
            bytes
        })
        .collect();
    let mut objects = Vec::new();
    for bytes in &datas {
        objects.push(cluster.put_bytes(bytes).await.unwrap());
    }
    // 6 x 20 MiB read into 64 MiB of segments, each dropped before the next.
    for round in 0..2 {
        for (obj, bytes) in objects.iter().zip(&datas) {
            let back = cluster
                .get_bytes(obj)
                .await
                .unwrap_or_else(|e| panic!("round {round}: get of {:#x}: {e}", obj.id()));
            assert!(back.is_zero_copy());
            assert!(back[..] == bytes[..], "round {round}: wrong bytes");
        }
    }
}
