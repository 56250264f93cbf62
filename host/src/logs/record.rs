//! The on-disk form of a log: records of `[stream: u8][len: u32 LE][bytes]`,
//! so a reader can start at any record boundary and stop at a byte budget.

/// Which output a record came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    Stdout = 1,
    Stderr = 2,
    /// The guest's `log` calls.
    Log = 3,
    /// The node's own remarks (a call starting, bytes dropped by the cap).
    Note = 4,
}

impl Stream {
    fn from_byte(b: u8) -> Option<Stream> {
        Some(match b {
            1 => Stream::Stdout,
            2 => Stream::Stderr,
            3 => Stream::Log,
            4 => Stream::Note,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
            Stream::Log => "log",
            Stream::Note => "note",
        }
    }
}

pub const HEADER: usize = 5;
/// The longest record: longer writes are cut into several.
pub const MAX_RECORD: usize = 64 << 10;

/// Appends one record (`bytes` at most `MAX_RECORD` long).
pub fn encode(out: &mut Vec<u8>, stream: Stream, bytes: &[u8]) {
    debug_assert!(bytes.len() <= MAX_RECORD);
    out.push(stream as u8);
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(bytes);
}

/// The whole records at the start of `buf` and the bytes they take; stops
/// at an incomplete record (still being written) or a corrupt one.
pub fn decode(buf: &[u8]) -> (Vec<(Stream, &[u8])>, usize) {
    let mut records = Vec::new();
    let mut at = 0;
    while buf.len() - at >= HEADER {
        let Some(stream) = Stream::from_byte(buf[at]) else {
            break;
        };
        let len = u32::from_le_bytes(buf[at + 1..at + HEADER].try_into().unwrap()) as usize;
        if len > MAX_RECORD || buf.len() - at - HEADER < len {
            break;
        }
        records.push((stream, &buf[at + HEADER..at + HEADER + len]));
        at += HEADER + len;
    }
    (records, at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_stops_at_a_partial_record() {
        let mut buf = Vec::new();
        encode(&mut buf, Stream::Stdout, b"hello\n");
        encode(&mut buf, Stream::Log, b"[info] x");
        let whole = buf.len();
        encode(&mut buf, Stream::Stderr, b"cut");
        buf.truncate(buf.len() - 1);
        let (records, used) = decode(&buf);
        assert_eq!(used, whole);
        assert_eq!(
            records,
            vec![
                (Stream::Stdout, &b"hello\n"[..]),
                (Stream::Log, &b"[info] x"[..])
            ]
        );
    }
}
