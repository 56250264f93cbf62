//! The descriptor socket: hands a same-machine driver the memfds of its own
//! objects (protocol in `reef_core::segments`).
//!
//! The socket is mode 0600 (only the node's user connects), and a
//! connection serves exactly one session: the one whose id prefix and
//! descriptor key it presents. The key is random per session and goes only
//! down that session's stream, so another session (another tenant's, or
//! the same tenant's) cannot ask for a descriptor in its name; and a session
//! is given only the buffers it created and the objects its own `Get`s
//! answered (see `Session::segment_fd`).
//!
//! A put may instead ask the node to copy the bytes out of the driver's
//! memory into the arena (`CreateBuffer.copy_from`, `Session::copy_in`), in
//! order with the session's other operations: one copy into
//! pages the arena already has, where a fresh segment's pages cost the
//! kernel ~1 s per GiB to allocate on a VM. The node reads only the process
//! at the other end of the session's connection here (`SO_PEERCRED`), and
//! only while it
//! lives (a pidfd: a read is discarded when the process ended meanwhile, so
//! a reused pid is never read).

use std::collections::HashMap;
use std::io::IoSlice;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use reef_core::segments::{self, HANDSHAKE_LEN, KEY_LEN, REQUEST_LEN};
use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags};
use tokio::io::{AsyncReadExt, AsyncWriteExt, Interest};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::Semaphore;

use crate::error::{ErrorCode, ReefError, ReefResult};

/// A connection must present its session within this long.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections served at once (one per same-machine session, plus strays).
const MAX_CONNECTIONS: usize = 1024;

/// What the descriptor socket needs of a driver session (`rpc::session`
/// implements it; a trait, so that this module does not depend on that one).
pub trait FdSession: Send + Sync {
    /// The process at the other end of the session's descriptor connection.
    fn set_peer(&self, peer: Arc<Peer>);
    /// A descriptor of the session's own buffer (`KIND_BUFFER`) or of an
    /// object its get returned (`KIND_READ`).
    fn segment_fd(&self, kind: u8, id: u64) -> ReefResult<OwnedFd>;
}

/// A session's descriptor key, and the session.
type Entry = (Vec<u8>, Weak<dyn FdSession>);

/// The sessions that may connect, by id prefix.
#[derive(Default)]
pub struct Registry {
    sessions: Mutex<HashMap<u64, Entry>>,
}

impl Registry {
    /// A fresh random key for session `prefix` (told to its driver in
    /// `Hello.fd_key`).
    pub fn register(&self, prefix: u64, session: &Arc<dyn FdSession>) -> std::io::Result<Vec<u8>> {
        let key = reef_proto::auth::random_bytes(KEY_LEN)?;
        self.sessions
            .lock()
            .unwrap()
            .insert(prefix, (key.clone(), Arc::downgrade(session)));
        Ok(key)
    }

    pub fn unregister(&self, prefix: u64) {
        self.sessions.lock().unwrap().remove(&prefix);
    }

    /// The session `prefix` when `key` is its key.
    fn session(&self, prefix: u64, key: &[u8]) -> Option<Weak<dyn FdSession>> {
        let sessions = self.sessions.lock().unwrap();
        let (expected, session) = sessions.get(&prefix)?;
        // Constant time: the comparison tells nothing of the key.
        let differs = expected
            .iter()
            .zip(key)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        (differs == 0 && expected.len() == key.len()).then(|| session.clone())
    }
}

/// Serves the descriptor socket until the listener fails.
pub async fn serve(registry: Arc<Registry>, listener: UnixListener) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::warn!("descriptor socket: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::warn!("descriptor socket: {MAX_CONNECTIONS} connections already; refused one");
            continue;
        };
        let registry = registry.clone();
        tokio::spawn(async move {
            if let Err(e) = connection(&registry, stream).await {
                tracing::debug!("descriptor connection ended: {e}");
            }
            drop(slot);
        });
    }
}

async fn connection(registry: &Registry, mut stream: UnixStream) -> std::io::Result<()> {
    let mut hello = [0u8; HANDSHAKE_LEN];
    tokio::time::timeout(HANDSHAKE_TIMEOUT, stream.read_exact(&mut hello))
        .await
        .map_err(|_| std::io::Error::other("no handshake"))??;
    let prefix = u64::from_le_bytes(hello[..8].try_into().unwrap());
    let Some(session) = registry.session(prefix, &hello[8..]) else {
        return Err(std::io::Error::other(format!(
            "refused: no session {prefix:#x} with that key"
        )));
    };
    match (Peer::of(&stream), session.upgrade()) {
        (Ok(peer), Some(session)) => session.set_peer(Arc::new(peer)),
        (Err(e), _) => tracing::debug!("puts of session {prefix:#x} will not be copied in: {e}"),
        (_, None) => return Ok(()),
    }
    stream.write_all(&[segments::OK]).await?;
    let mut request = [0u8; REQUEST_LEN];
    loop {
        if stream.read_exact(&mut request).await.is_err() {
            return Ok(()); // the driver closed it
        }
        let id = u64::from_le_bytes(request[1..].try_into().unwrap());
        let Some(session) = session.upgrade() else {
            return Ok(()); // the session ended
        };
        let result = session.segment_fd(request[0], id).map(Some);
        drop(session);
        reply(&mut stream, result).await?;
    }
}

/// Puts of at least this many bytes are read by several threads.
const PARALLEL_READ_MIN: usize = 32 << 20;
/// At most this many threads read one put.
const MAX_READ_THREADS: usize = 4;

/// The process at the other end of a connection: its pid, and a pidfd
/// that tells whether that process still lives.
pub struct Peer {
    pid: libc::pid_t,
    pidfd: OwnedFd,
}

impl Peer {
    fn of(stream: &UnixStream) -> std::io::Result<Peer> {
        let pid = stream
            .peer_cred()?
            .pid()
            .ok_or_else(|| std::io::Error::other("no peer pid"))?;
        let pidfd = match peer_pidfd(stream) {
            Some(fd) => fd,
            // Before Linux 6.5: the pid's process now (checked alive below;
            // the connecting process would have to die and its pid be
            // taken within this call for it to be another's).
            None => {
                // SAFETY: pidfd_open takes a pid and flags and returns a new
                // descriptor we own.
                let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
                if fd < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // SAFETY: a fresh descriptor nobody else owns.
                unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd as i32) }
            }
        };
        let peer = Peer { pid, pidfd };
        // The pid was the connected process's when pidfd_open ran only if
        // that process is still alive now (otherwise the pid may be reused).
        if !peer.alive() {
            return Err(std::io::Error::other("the driver's process ended"));
        }
        Ok(peer)
    }

    /// Whether the process has not exited (its pidfd is not readable).
    fn alive(&self) -> bool {
        let mut poll = libc::pollfd {
            fd: std::os::fd::AsRawFd::as_raw_fd(&self.pidfd),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd, no wait.
        let ready = unsafe { libc::poll(&mut poll, 1, 0) };
        ready == 0
    }

    /// Copies `[addr, addr + buf.len())` of the process's memory into `buf`.
    /// A large put is read by several threads at once, a slice each: one
    /// `process_vm_readv` pins and copies the driver's 4 KiB pages one by one
    /// on one core (~5 GB/s here for 1 GiB), and the copy is not bound by
    /// memory bandwidth yet.
    pub fn read(&self, addr: u64, buf: &mut [u8]) -> ReefResult<()> {
        let threads = if buf.len() >= PARALLEL_READ_MIN {
            std::thread::available_parallelism().map_or(1, |n| n.get().min(MAX_READ_THREADS))
        } else {
            1
        };
        let slice = buf.len().div_ceil(threads).max(1);
        if threads == 1 {
            self.read_slice(addr, buf)?;
        } else {
            std::thread::scope(|scope| {
                let readers: Vec<_> = buf
                    .chunks_mut(slice)
                    .enumerate()
                    .map(|(i, part)| {
                        let at = addr + (i * slice) as u64;
                        scope.spawn(move || self.read_slice(at, part))
                    })
                    .collect();
                readers.into_iter().try_for_each(|r| {
                    r.join()
                        .unwrap_or_else(|_| Err(ReefError::internal("a put's reader panicked")))
                })
            })?;
        }
        // Read from the driver, not from a process that took its pid.
        if !self.alive() {
            return Err(ReefError::new(
                ErrorCode::BadArgument,
                "the driver's process ended during its put",
            ));
        }
        Ok(())
    }

    /// One `process_vm_readv` loop over `[addr, addr + buf.len())`.
    fn read_slice(&self, addr: u64, buf: &mut [u8]) -> ReefResult<()> {
        let mut done = 0usize;
        while done < buf.len() {
            let local = libc::iovec {
                iov_base: buf[done..].as_mut_ptr() as *mut libc::c_void,
                iov_len: buf.len() - done,
            };
            let remote = libc::iovec {
                iov_base: (addr as usize + done) as *mut libc::c_void,
                iov_len: buf.len() - done,
            };
            // SAFETY: `local` is our own writable buffer of that length; the
            // kernel checks the remote range against the other process.
            let n = unsafe { libc::process_vm_readv(self.pid, &local, 1, &remote, 1, 0) };
            if n <= 0 {
                let e = std::io::Error::last_os_error();
                return Err(ReefError::new(
                    ErrorCode::BadArgument,
                    format!("cannot read the put's bytes from the driver's memory: {e}"),
                ));
            }
            done += n as usize;
        }
        Ok(())
    }
}

/// A pidfd of the process that connected `stream` (`SO_PEERPIDFD`, Linux
/// 6.5+: the very process, even if its pid was reused since), or `None`.
fn peer_pidfd(stream: &UnixStream) -> Option<OwnedFd> {
    /// `SO_PEERPIDFD`, not yet in the libc crate.
    const SO_PEERPIDFD: libc::c_int = 77;
    let mut fd: libc::c_int = -1;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt writes one int into `fd` and its size into `len`.
    let rc = unsafe {
        libc::getsockopt(
            std::os::fd::AsRawFd::as_raw_fd(stream),
            libc::SOL_SOCKET,
            SO_PEERPIDFD,
            &mut fd as *mut libc::c_int as *mut libc::c_void,
            &mut len,
        )
    };
    // SAFETY: on success the kernel gave us a new descriptor we own.
    (rc == 0 && fd >= 0).then(|| unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) })
}

/// Sends one reply: success (with a descriptor, or none), or the error.
async fn reply(
    stream: &mut UnixStream,
    result: ReefResult<Option<OwnedFd>>,
) -> std::io::Result<()> {
    let (status, message, fd) = match result {
        Ok(fd) => (segments::OK, String::new(), fd),
        Err(e) => (segments::ERROR, e.to_string(), None),
    };
    let mut message = message.into_bytes();
    message.truncate(segments::MAX_MESSAGE);
    let mut bytes = vec![status];
    bytes.extend_from_slice(&(message.len() as u32).to_le_bytes());
    bytes.extend_from_slice(&message);
    // The descriptor rides on the first byte; what a short send left goes
    // after it.
    let sent = loop {
        stream.writable().await?;
        let attempt = stream.try_io(Interest::WRITABLE, || {
            let fds: Vec<_> = fd.iter().map(|fd| fd.as_fd()).collect();
            let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
            let mut control = SendAncillaryBuffer::new(&mut space);
            if !fds.is_empty() {
                control.push(SendAncillaryMessage::ScmRights(&fds));
            }
            rustix::net::sendmsg(
                &*stream,
                &[IoSlice::new(&bytes)],
                &mut control,
                SendFlags::NOSIGNAL,
            )
            .map_err(std::io::Error::from)
        });
        match attempt {
            Ok(n) => break n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    };
    stream.write_all(&bytes[sent..]).await
}
