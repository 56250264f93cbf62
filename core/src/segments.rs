//! The node's descriptor socket (`<socket>-fds.sock`, next to its Unix
//! socket): where a driver on the node's machine receives the memfds of its
//! own objects (`SCM_RIGHTS`), which a tonic stream cannot carry.
//!
//! A connection starts with the session's id prefix (8 bytes, little
//! endian) and the session's descriptor key (`Hello.fd_key`, `KEY_LEN`
//! bytes, sent only on that session's stream); the node answers one byte,
//! `OK`, or closes. From then on the node may also read the memory of the
//! connected process for that session's puts (`CreateBuffer.copy_from`).
//! Each request is a kind byte and an object id (8 bytes LE); each reply a
//! status byte (`OK`, with the descriptor attached, or `ERROR`), a length
//! (4 bytes LE) and that many bytes of error message (empty when `OK`).

use std::path::{Path, PathBuf};

/// Bytes of a session's descriptor key.
pub const KEY_LEN: usize = 32;
/// The handshake: id prefix, then key.
pub const HANDSHAKE_LEN: usize = 8 + KEY_LEN;
/// A request: kind, then object id.
pub const REQUEST_LEN: usize = 9;
/// A reply's header: status, then message length.
pub const REPLY_HEADER_LEN: usize = 5;
/// The most bytes of error message a reply carries.
pub const MAX_MESSAGE: usize = 4096;

/// Kind: the buffer of a put the session created (`CreateBuffer`), to write.
pub const KIND_BUFFER: u8 = 1;
/// Kind: a sealed object a `Get` answered as `segment`, to read.
pub const KIND_READ: u8 = 2;

pub const OK: u8 = 0;
pub const ERROR: u8 = 1;

/// The descriptor socket of the node whose Unix socket is `socket`:
/// `node.sock` -> `node-fds.sock`.
pub fn socket_path(socket: &Path) -> PathBuf {
    let stem = socket
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    socket.with_file_name(format!("{stem}-fds.sock"))
}
