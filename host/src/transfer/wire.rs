//! The framing of a raw pull connection: a few fixed fields, then the
//! object's bytes as they are, with no per-chunk envelope (so neither side
//! encodes, decodes or copies a chunk: the holder writes from its arena and
//! the puller reads into its destination block).
//!
//! A pull connection is a TCP connection to the node's ordinary port (the
//! one serving gRPC): its first byte, [`MAGIC`]`[0]` (0xEE), can never start
//! an HTTP/2 connection (whose preface starts with `P`), so the node tells the
//! two apart on accept (`serve::split_listener`). Integers are little-endian.
//!
//! ```text
//! request  (puller → holder), any number per connection, one at a time:
//!   magic     8 bytes   EE 'R' 'E' 'E' 'F' 'P' 'L' 01   (01: version)
//!   auth_len  u16       then `auth_len` bytes: "Bearer <cluster token>",
//!                       exactly the gRPC `authorization` value
//!   id        u64       the object
//!   offset    u64       first byte wanted
//!   end       u64       one past the last byte wanted (clamped to the size)
//! reply    (holder → puller):
//!   status    u8        0 = OK, else a `Status` (below)
//!   size      u64       the object's total size (0 on error)
//!   OK:    exactly min(end, size) - offset bytes of the object follow; the
//!          connection then takes the next request.
//!   error: msg_len u32 and a UTF-8 message (`CODE: text`, e.g.
//!          `UNKNOWN_OBJECT: ...`); the holder then closes the connection.
//! ```

use std::io::{self, Read, Write};

/// The first bytes of every request; the last one is the version.
pub const MAGIC: [u8; 8] = [0xEE, b'R', b'E', b'E', b'F', b'P', b'L', 1];

/// The longest `authorization` value a holder reads.
const MAX_AUTH: usize = 4096;
/// The longest error message a puller reads.
const MAX_MESSAGE: usize = 64 << 10;

/// What a holder answers (named after the gRPC codes for the same cases).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Status {
    Ok = 0,
    /// A missing or wrong token.
    Unauthenticated = 1,
    /// Unknown (or freed) object.
    NotFound = 2,
    /// The object's task failed; the message is its error.
    FailedPrecondition = 3,
    /// `offset` past the end.
    OutOfRange = 4,
    /// A spilled object could not be restored to be sent.
    ResourceExhausted = 5,
    /// Anything else (a bad request, the node stopping).
    Internal = 6,
}

impl Status {
    fn from_u8(b: u8) -> Status {
        match b {
            0 => Status::Ok,
            1 => Status::Unauthenticated,
            2 => Status::NotFound,
            3 => Status::FailedPrecondition,
            4 => Status::OutOfRange,
            5 => Status::ResourceExhausted,
            _ => Status::Internal,
        }
    }
}

/// One request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// `Bearer <token>`.
    pub auth: Vec<u8>,
    pub id: u64,
    pub offset: u64,
    pub end: u64,
}

impl Request {
    /// Writes the request in one `write_all` (one segment with TCP_NODELAY).
    pub fn write_to(&self, w: &mut impl Write) -> io::Result<()> {
        let mut buf = Vec::with_capacity(8 + 2 + self.auth.len() + 24);
        buf.extend_from_slice(&MAGIC);
        buf.extend_from_slice(&(self.auth.len() as u16).to_le_bytes());
        buf.extend_from_slice(&self.auth);
        buf.extend_from_slice(&self.id.to_le_bytes());
        buf.extend_from_slice(&self.offset.to_le_bytes());
        buf.extend_from_slice(&self.end.to_le_bytes());
        w.write_all(&buf)
    }

    /// Reads one request; `Ok(None)` when the connection ends before one starts.
    pub fn read_from(r: &mut impl Read) -> io::Result<Option<Request>> {
        let mut magic = [0u8; 8];
        match r.read(&mut magic[..1])? {
            0 => return Ok(None),
            _ => r.read_exact(&mut magic[1..])?,
        }
        if magic != MAGIC {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("not a pull request (or another version): {magic:02x?}"),
            ));
        }
        let auth_len = u16::from_le_bytes(read_array(r)?) as usize;
        if auth_len > MAX_AUTH {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("authorization of {auth_len} bytes"),
            ));
        }
        let mut auth = vec![0u8; auth_len];
        r.read_exact(&mut auth)?;
        let id = u64::from_le_bytes(read_array(r)?);
        let offset = u64::from_le_bytes(read_array(r)?);
        let end = u64::from_le_bytes(read_array(r)?);
        Ok(Some(Request {
            auth,
            id,
            offset,
            end,
        }))
    }
}

/// Writes a reply header: status and size (an error adds its message).
pub fn write_reply(w: &mut impl Write, status: Status, size: u64, message: &str) -> io::Result<()> {
    let mut buf = Vec::with_capacity(13 + message.len());
    buf.push(status as u8);
    buf.extend_from_slice(&size.to_le_bytes());
    if status != Status::Ok {
        let message = &message.as_bytes()[..message.len().min(MAX_MESSAGE)];
        buf.extend_from_slice(&(message.len() as u32).to_le_bytes());
        buf.extend_from_slice(message);
    }
    w.write_all(&buf)
}

/// Reads a reply header: `Ok(size)`, or the holder's status and message.
pub fn read_reply(r: &mut impl Read) -> io::Result<Result<u64, (Status, String)>> {
    let [status] = read_array::<1>(r)?;
    let size = u64::from_le_bytes(read_array(r)?);
    let status = Status::from_u8(status);
    if status == Status::Ok {
        return Ok(Ok(size));
    }
    let len = u32::from_le_bytes(read_array(r)?) as usize;
    if len > MAX_MESSAGE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("an error message of {len} bytes"),
        ));
    }
    let mut message = vec![0u8; len];
    r.read_exact(&mut message)?;
    Ok(Err((
        status,
        String::from_utf8_lossy(&message).into_owned(),
    )))
}

/// [`Request::read_from`] on an async stream, reading exactly the request's
/// bytes (nothing of what follows): a connection is authenticated before it
/// gets a thread of its own.
pub async fn read_request_async(
    r: &mut (impl tokio::io::AsyncRead + Unpin),
) -> io::Result<Option<Request>> {
    use tokio::io::AsyncReadExt;
    let mut head = [0u8; 10];
    match r.read(&mut head[..1]).await? {
        0 => return Ok(None),
        _ => r.read_exact(&mut head[1..]).await?,
    };
    let auth_len = u16::from_le_bytes([head[8], head[9]]) as usize;
    if head[..8] != MAGIC || auth_len > MAX_AUTH {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "not a pull request (or another version): {:02x?}",
                &head[..8]
            ),
        ));
    }
    let mut buf = head.to_vec();
    buf.resize(10 + auth_len + 24, 0);
    r.read_exact(&mut buf[10..]).await?;
    Request::read_from(&mut &buf[..])
}

fn read_array<const N: usize>(r: &mut impl Read) -> io::Result<[u8; N]> {
    let mut a = [0u8; N];
    r.read_exact(&mut a)?;
    Ok(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_replies_round_trip() {
        let req = Request {
            auth: b"Bearer abc".to_vec(),
            id: 0x1234_5678_9abc,
            offset: 17,
            end: u64::MAX,
        };
        let mut buf = vec![];
        req.write_to(&mut buf).unwrap();
        assert_eq!(buf[0], 0xEE, "never the first byte of an HTTP/2 preface");
        let mut r = &buf[..];
        assert_eq!(Request::read_from(&mut r).unwrap(), Some(req));
        assert_eq!(Request::read_from(&mut r).unwrap(), None, "clean end");

        let mut buf = vec![];
        write_reply(&mut buf, Status::Ok, 99, "").unwrap();
        write_reply(&mut buf, Status::NotFound, 0, "UNKNOWN_OBJECT: 0x42").unwrap();
        let mut r = &buf[..];
        assert_eq!(read_reply(&mut r).unwrap(), Ok(99));
        assert_eq!(
            read_reply(&mut r).unwrap(),
            Err((Status::NotFound, "UNKNOWN_OBJECT: 0x42".to_string()))
        );
    }

    #[tokio::test]
    async fn a_request_reads_alike_from_an_async_stream() {
        let req = Request {
            auth: b"Bearer xyz".to_vec(),
            id: 9,
            offset: 1,
            end: 2,
        };
        let mut buf = vec![];
        req.write_to(&mut buf).unwrap();
        buf.extend_from_slice(b"rest");
        let mut r = &buf[..];
        assert_eq!(read_request_async(&mut r).await.unwrap(), Some(req));
        assert_eq!(r, b"rest", "nothing read past the request");
    }

    #[test]
    fn an_http2_preface_is_refused() {
        let mut r = &b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"[..];
        assert!(Request::read_from(&mut r).is_err());
    }
}
