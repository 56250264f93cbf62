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

use super::session::Session;
use crate::error::ReefResult;

/// A connection must present its session within this long.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections served at once (one per same-machine session, plus strays).
const MAX_CONNECTIONS: usize = 1024;

/// The sessions that may connect, by id prefix.
#[derive(Default)]
pub struct Registry {
    sessions: Mutex<HashMap<u64, (Vec<u8>, Weak<Session>)>>,
}

impl Registry {
    /// A fresh random key for session `prefix` (told to its driver in
    /// `Hello.fd_key`).
    pub fn register(&self, prefix: u64, session: &Arc<Session>) -> std::io::Result<Vec<u8>> {
        use std::io::Read;
        let mut key = vec![0u8; KEY_LEN];
        std::fs::File::open("/dev/urandom")?.read_exact(&mut key)?;
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
    fn session(&self, prefix: u64, key: &[u8]) -> Option<Weak<Session>> {
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
        let result = session.segment_fd(request[0], id);
        drop(session);
        reply(&mut stream, result).await?;
    }
}

/// Sends one reply: the descriptor, or the error.
async fn reply(stream: &mut UnixStream, result: ReefResult<OwnedFd>) -> std::io::Result<()> {
    let (status, message, fd) = match result {
        Ok(fd) => (segments::OK, String::new(), Some(fd)),
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
