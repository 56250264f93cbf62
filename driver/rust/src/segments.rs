//! Segments, when the driver runs on the node's machine: each large object
//! it puts or gets is a memfd of its own (never the node's arena), whose
//! descriptor the node hands this session over its descriptor socket
//! (protocol in `reef_core::segments`). A put maps its fresh buffer
//! writable, writes and unmaps it before the node seals it; a get maps the
//! sealed object read-only (the kernel refuses a writable mapping).

use std::ffi::c_void;
use std::fs::File;
use std::io::IoSliceMut;
use std::mem::MaybeUninit;
use std::os::fd::OwnedFd;

use reef_core::segments::{self, HANDSHAKE_LEN, MAX_MESSAGE, REPLY_HEADER_LEN};
use reef_proto as pb;
use rustix::mm::{self, MapFlags, ProtFlags};
use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
use tokio::io::{AsyncReadExt, AsyncWriteExt, Interest};
use tokio::net::UnixStream;

use crate::error::{Error, Result};

pub use reef_core::segments::{KIND_BUFFER, KIND_READ};

/// This session's connection to the node's descriptor socket.
pub struct Segments {
    /// One request at a time: a reply carries its descriptor.
    stream: tokio::sync::Mutex<UnixStream>,
}

impl Segments {
    /// Connects to the node's descriptor socket as session `hello`, or
    /// `None` when it is not reachable (the node is on another machine, or
    /// another user's) or refuses the key.
    pub async fn connect(hello: &pb::Hello) -> Option<Segments> {
        if hello.fd_socket.is_empty() || hello.fd_key.is_empty() {
            return None;
        }
        let mut stream = UnixStream::connect(&hello.fd_socket).await.ok()?;
        // Where Yama restricts ptrace to descendants, let the node read the
        // bytes of this process's puts (`CreateBuffer.copy_from`); best effort: a put
        // the node cannot read goes through a segment instead.
        if let Some(node) = stream.peer_cred().ok().and_then(|c| c.pid()) {
            // SAFETY: PR_SET_PTRACER takes a pid; it changes only who may trace us.
            unsafe { libc::prctl(libc::PR_SET_PTRACER, node as libc::c_ulong, 0, 0, 0) };
        }
        let mut handshake = Vec::with_capacity(HANDSHAKE_LEN);
        handshake.extend_from_slice(&hello.id_prefix.to_le_bytes());
        handshake.extend_from_slice(&hello.fd_key);
        stream.write_all(&handshake).await.ok()?;
        let mut ok = [0u8; 1];
        stream.read_exact(&mut ok).await.ok()?;
        (ok[0] == segments::OK).then(|| Segments {
            stream: tokio::sync::Mutex::new(stream),
        })
    }

    /// The descriptor of segment `id` of this session (`KIND_BUFFER`: a
    /// put's buffer; `KIND_READ`: an object a get answered as a segment).
    pub async fn fetch(&self, kind: u8, id: u64) -> Result<File> {
        let mut stream = self.stream.lock().await;
        let mut request = [0u8; segments::REQUEST_LEN];
        request[0] = kind;
        request[1..].copy_from_slice(&id.to_le_bytes());
        stream.write_all(&request).await.map_err(lost)?;
        let (status, message, fd) = receive(&mut stream).await.map_err(lost)?;
        match (status, fd) {
            (segments::OK, Some(fd)) => Ok(File::from(fd)),
            _ => Err(Error::new(
                pb::ErrorCode::Internal,
                format!(
                    "the node gave no descriptor for object {id:#x}: {}",
                    String::from_utf8_lossy(&message)
                ),
            )),
        }
    }
}

fn lost(e: std::io::Error) -> Error {
    Error::new(
        pb::ErrorCode::Internal,
        format!("the node's descriptor socket failed: {e}"),
    )
}

/// One reply: status, message, and the descriptor that came with it.
async fn receive(stream: &mut UnixStream) -> std::io::Result<(u8, Vec<u8>, Option<OwnedFd>)> {
    let mut header = [0u8; REPLY_HEADER_LEN];
    let (read, fd) = loop {
        stream.readable().await?;
        let attempt = stream.try_io(Interest::READABLE, || {
            let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
            let mut control = RecvAncillaryBuffer::new(&mut space);
            let msg = rustix::net::recvmsg(
                &*stream,
                &mut [IoSliceMut::new(&mut header)],
                &mut control,
                RecvFlags::CMSG_CLOEXEC,
            )?;
            // Any descriptor beyond the first is closed as it drops.
            let mut fd = None;
            for message in control.drain() {
                if let RecvAncillaryMessage::ScmRights(fds) = message {
                    for received in fds {
                        if fd.is_none() {
                            fd = Some(received);
                        }
                    }
                }
            }
            Ok((msg.bytes, fd))
        });
        match attempt {
            Ok(r) => break r,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    };
    if read == 0 {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    stream.read_exact(&mut header[read..]).await?;
    let len = u32::from_le_bytes(header[1..].try_into().unwrap()) as usize;
    if len > MAX_MESSAGE {
        return Err(std::io::Error::other(format!("a reply of {len} bytes")));
    }
    let mut message = vec![0u8; len];
    stream.read_exact(&mut message).await?;
    Ok((header[0], message, fd))
}

/// Writes `data` into a put's fresh buffer and unmaps it (the node's seal
/// fails while a writable mapping remains).
pub fn write(buffer: &File, data: &[u8]) -> Result<()> {
    let map = Mapping::new(buffer, data.len(), true).map_err(|e| {
        Error::new(
            pb::ErrorCode::Internal,
            format!("mapping an object's buffer of {} bytes: {e}", data.len()),
        )
    })?;
    // SAFETY: the buffer is a memfd the node made for this put and gave only
    // to this session; nobody else writes or resizes it before we seal it,
    // and the mapping is writable and `data.len()` bytes long.
    unsafe {
        // Allocates the page tables in one call instead of a fault per page
        // (best effort: older kernels fault them in as we write).
        libc::madvise(map.ptr, map.len, libc::MADV_POPULATE_WRITE);
        std::ptr::copy_nonoverlapping(data.as_ptr(), map.ptr as *mut u8, data.len());
    }
    drop(map);
    Ok(())
}

/// Maps a sealed object read-only.
pub fn map(object: &File, len: u64) -> Result<Mapping> {
    Mapping::new(object, len as usize, false).map_err(|e| {
        Error::new(
            pb::ErrorCode::Internal,
            format!("mapping an object of {len} bytes: {e}"),
        )
    })
}

/// 2 MiB: segments of 8 MiB and more are made of pages this large.
const HUGE_PAGE: usize = 2 << 20;

/// A shared mapping of a segment from offset 0, at a 2 MiB-aligned address
/// (so the kernel maps the segment's 2 MiB pages whole: no fault per 4 KiB
/// page); unmapped when dropped.
pub struct Mapping {
    ptr: *mut c_void,
    len: usize,
    /// Bytes mapped (`len` rounded up to pages).
    size: usize,
}

// SAFETY: plain shared memory owned by this value; a read-only mapping's
// bytes never change (the segment is sealed).
unsafe impl Send for Mapping {}
// SAFETY: as above.
unsafe impl Sync for Mapping {}

impl Mapping {
    fn new(file: &File, len: usize, writable: bool) -> std::io::Result<Mapping> {
        let size = len.max(1).next_multiple_of(4096);
        let span = size + HUGE_PAGE;
        // SAFETY: a fresh inaccessible reservation the kernel places; nothing
        // refers to it.
        let reserve = unsafe {
            mm::mmap_anonymous(
                std::ptr::null_mut(),
                span,
                ProtFlags::empty(),
                MapFlags::PRIVATE | MapFlags::NORESERVE,
            )
        }?;
        let start = reserve as usize;
        let aligned = start.next_multiple_of(HUGE_PAGE);
        let prot = match writable {
            true => ProtFlags::READ | ProtFlags::WRITE,
            false => ProtFlags::READ,
        };
        // SAFETY: [aligned, aligned+size) lies inside our reservation.
        let mapped = unsafe {
            mm::mmap(
                aligned as *mut c_void,
                size,
                prot,
                MapFlags::SHARED | MapFlags::FIXED,
                file,
                0,
            )
        };
        // SAFETY: the parts of our reservation around the mapping (or all of
        // it, when the mapping failed); empty parts are skipped.
        unsafe {
            if mapped.is_err() {
                let _ = mm::munmap(reserve, span);
            } else {
                if aligned > start {
                    let _ = mm::munmap(reserve, aligned - start);
                }
                let end = aligned + size;
                if start + span > end {
                    let _ = mm::munmap(end as *mut c_void, start + span - end);
                }
            }
        }
        Ok(Mapping {
            ptr: mapped?,
            len,
            size,
        })
    }
}

impl std::ops::Deref for Mapping {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: `len` readable bytes mapped while `self` lives.
        unsafe { std::slice::from_raw_parts(self.ptr as *const u8, self.len) }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: our own mapping, which no borrow outlives (`Deref` borrows self).
        let _ = unsafe { mm::munmap(self.ptr, self.size) };
    }
}
