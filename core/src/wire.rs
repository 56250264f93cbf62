//! The framing of raw object connections to a node's port: a few fixed
//! fields, then an object's bytes as they are, with no per-chunk envelope (so
//! neither side encodes, decodes or copies a chunk: the sender writes from
//! its memory, the receiver reads into its destination).
//!
//! Two kinds of request share the framing: a **pull** (a node pulling from
//! another, or a remote driver's `get`) and a **push** (a remote driver's
//! `put`, into a buffer its session created with `CreateBuffer { stream }`).
//!
//! A raw connection is a TCP connection to the node's ordinary port (the one
//! serving gRPC): its first byte, [`MAGIC`]`[0]` (0xEE), can never start an
//! HTTP/2 connection (whose preface starts with `P`), so the node tells the
//! two apart on accept. Integers are little-endian.
//!
//! ```text
//! request, any number per connection, one at a time:
//!   magic     8 bytes   EE 'R' 'E' 'E' 'F' 'P' 'L' 01 (pull)
//!                    or EE 'R' 'E' 'E' 'F' 'P' 'U' 01 (push)   (01: version)
//!   auth_len  u16       then `auth_len` bytes: "Bearer <cluster token>",
//!                       exactly the gRPC `authorization` value
//!   id        u64       the object
//!   offset    u64       first byte
//!   end       u64       one past the last byte (a pull clamps it to the size)
//! reply header:
//!   status    u8        0 = OK, else a `Status` (below)
//!   size      u64       the object's total size (0 on error)
//!   error: msg_len u32 and a UTF-8 message (`CODE: text`, e.g.
//!          `UNKNOWN_OBJECT: ...`); the node then closes the connection.
//! pull, OK: exactly min(end, size) - offset bytes of the object follow.
//! push, OK: the driver sends exactly end - offset bytes; the node answers
//!          with a second reply header once they are in place (OK, or the
//!          error that discarded the buffer).
//! ```
//! After a complete exchange the connection takes the next request.

use std::io::{self, Read, Write};

/// The first bytes of a pull request; the last one is the version.
pub const MAGIC: [u8; 8] = [0xEE, b'R', b'E', b'E', b'F', b'P', b'L', 1];
/// The first bytes of a push request.
pub const PUSH_MAGIC: [u8; 8] = [0xEE, b'R', b'E', b'E', b'F', b'P', b'U', 1];

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

/// What a request asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The node sends bytes of a stored object.
    Pull,
    /// The driver sends bytes of an object it is putting.
    Push,
}

impl Kind {
    fn magic(self) -> [u8; 8] {
        match self {
            Kind::Pull => MAGIC,
            Kind::Push => PUSH_MAGIC,
        }
    }

    fn from_magic(magic: &[u8]) -> Option<Kind> {
        if magic == MAGIC {
            Some(Kind::Pull)
        } else if magic == PUSH_MAGIC {
            Some(Kind::Push)
        } else {
            None
        }
    }
}

/// One request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub kind: Kind,
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
        buf.extend_from_slice(&self.kind.magic());
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
        let Some(kind) = Kind::from_magic(&magic) else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("not a pull or push request (or another version): {magic:02x?}"),
            ));
        };
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
            kind,
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

/// The typed error a reply's status and message (`CODE: text`) stand for.
pub fn reply_error(status: Status, message: &str) -> crate::ReefError {
    use crate::ErrorCode;
    let named = message
        .split_once(": ")
        .and_then(|(code, text)| Some((ErrorCode::from_str_name(code)?, text)));
    match named {
        Some((code, text)) => crate::ReefError::new(code, text),
        None => {
            let code = match status {
                Status::Unauthenticated => ErrorCode::Unauthenticated,
                Status::NotFound => ErrorCode::UnknownObject,
                Status::OutOfRange => ErrorCode::BadArgument,
                Status::ResourceExhausted => ErrorCode::StoreFull,
                Status::Ok | Status::FailedPrecondition | Status::Internal => ErrorCode::Internal,
            };
            crate::ReefError::new(code, message)
        }
    }
}

/// The status a typed error is sent with (its message carries the code).
pub fn error_status(code: crate::ErrorCode) -> Status {
    use crate::ErrorCode;
    match code {
        ErrorCode::Unauthenticated => Status::Unauthenticated,
        ErrorCode::UnknownObject => Status::NotFound,
        ErrorCode::StoreFull => Status::ResourceExhausted,
        ErrorCode::BadArgument => Status::OutOfRange,
        _ => Status::FailedPrecondition,
    }
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
    if Kind::from_magic(&head[..8]).is_none() || auth_len > MAX_AUTH {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "not a pull or push request (or another version): {:02x?}",
                &head[..8]
            ),
        ));
    }
    let mut buf = head.to_vec();
    buf.resize(10 + auth_len + 24, 0);
    r.read_exact(&mut buf[10..]).await?;
    Request::read_from(&mut &buf[..])
}

/// [`read_reply`] on an async stream.
pub async fn read_reply_async(
    r: &mut (impl tokio::io::AsyncRead + Unpin),
) -> io::Result<Result<u64, (Status, String)>> {
    use tokio::io::AsyncReadExt;
    let mut head = [0u8; 9];
    r.read_exact(&mut head).await?;
    let status = Status::from_u8(head[0]);
    let size = u64::from_le_bytes(head[1..].try_into().expect("8 bytes"));
    if status == Status::Ok {
        return Ok(Ok(size));
    }
    let len = r.read_u32_le().await? as usize;
    if len > MAX_MESSAGE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("an error message of {len} bytes"),
        ));
    }
    let mut message = vec![0u8; len];
    r.read_exact(&mut message).await?;
    Ok(Err((
        status,
        String::from_utf8_lossy(&message).into_owned(),
    )))
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
            kind: Kind::Pull,
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
            kind: Kind::Push,
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
    fn reply_errors_keep_their_code() {
        let e = reply_error(Status::OutOfRange, "BAD_ARGUMENT: 5 bytes past the size");
        assert_eq!(e.code, crate::ErrorCode::BadArgument);
        assert_eq!(e.message, "5 bytes past the size");
        let e = reply_error(Status::NotFound, "gone");
        assert_eq!(e.code, crate::ErrorCode::UnknownObject);
    }

    #[test]
    fn an_http2_preface_is_refused() {
        let mut r = &b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"[..];
        assert!(Request::read_from(&mut r).is_err());
    }
}
