//! The storage abstraction every table sits on.
//!
//! A [`Storage`] is a set of named tables, each an ordered map from byte keys
//! to byte values. It knows nothing about records, ids or JSON: that lives in
//! [`crate::tables`]. The trait is deliberately small (point reads and
//! writes, a prefix scan and an atomic batch) so that a networked backend
//! such as Redis can implement it without ceremony.

use crate::error::Result;

/// One key/value pair returned by a scan.
pub type Entry = (Vec<u8>, Vec<u8>);

/// A single mutation inside [`Storage::write_batch`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOp<'a> {
    /// Insert or overwrite `key` in `table`.
    Put {
        table: &'a str,
        key: &'a [u8],
        value: &'a [u8],
    },
    /// Remove `key` from `table` (a no-op if absent).
    Delete { table: &'a str, key: &'a [u8] },
}

/// Table-scoped byte key/value store.
///
/// Tables spring into existence on first write; reading or scanning a table
/// that was never written yields nothing rather than an error.
/// Implementations must be safe to share between threads. Individual calls
/// are atomic; [`Storage::write_batch`] is atomic as a whole. Callers that
/// need read-modify-write atomicity serialize themselves (as [`crate::tables::Kv`]
/// and [`crate::tables::Counters`] do).
pub trait Storage: Send + Sync {
    /// Reads one value.
    fn get(&self, table: &str, key: &[u8]) -> Result<Option<Vec<u8>>>;

    /// Inserts or overwrites one value.
    fn put(&self, table: &str, key: &[u8], value: &[u8]) -> Result<()>;

    /// Removes one key; returns whether it was present.
    fn delete(&self, table: &str, key: &[u8]) -> Result<bool>;

    /// All entries whose key starts with `prefix`, in key order.
    fn scan_prefix(&self, table: &str, prefix: &[u8]) -> Result<Vec<Entry>>;

    /// Applies all `ops` in order, atomically: either all land or none.
    fn write_batch(&self, ops: &[WriteOp<'_>]) -> Result<()>;

    /// All entries of a table, in key order.
    fn scan(&self, table: &str) -> Result<Vec<Entry>> {
        self.scan_prefix(table, &[])
    }
}

#[cfg(test)]
pub(crate) mod conformance {
    //! Behaviour every backend must share; run by each backend's tests.

    use super::*;

    pub(crate) fn check(store: &dyn Storage) {
        assert_eq!(store.get("t", b"a").unwrap(), None);
        assert!(store.scan("t").unwrap().is_empty());
        assert!(!store.delete("t", b"a").unwrap());

        store.put("t", b"b", b"2").unwrap();
        store.put("t", b"a", b"1").unwrap();
        store.put("t", b"ab", b"3").unwrap();
        store.put("other", b"a", b"x").unwrap();
        assert_eq!(store.get("t", b"a").unwrap().as_deref(), Some(&b"1"[..]));
        assert_eq!(
            store.get("other", b"a").unwrap().as_deref(),
            Some(&b"x"[..])
        );

        store.put("t", b"a", b"1bis").unwrap();
        let keys: Vec<_> = store.scan("t").unwrap().into_iter().map(|e| e.0).collect();
        assert_eq!(keys, vec![b"a".to_vec(), b"ab".to_vec(), b"b".to_vec()]);
        let pre = store.scan_prefix("t", b"a").unwrap();
        assert_eq!(
            pre,
            vec![
                (b"a".to_vec(), b"1bis".to_vec()),
                (b"ab".to_vec(), b"3".to_vec())
            ]
        );

        assert!(store.delete("t", b"a").unwrap());
        assert_eq!(store.get("t", b"a").unwrap(), None);

        store
            .write_batch(&[
                WriteOp::Put {
                    table: "t",
                    key: b"c",
                    value: b"4",
                },
                WriteOp::Delete {
                    table: "t",
                    key: b"b",
                },
                WriteOp::Put {
                    table: "fresh",
                    key: b"k",
                    value: b"v",
                },
            ])
            .unwrap();
        assert_eq!(store.get("t", b"c").unwrap().as_deref(), Some(&b"4"[..]));
        assert_eq!(store.get("t", b"b").unwrap(), None);
        assert_eq!(
            store.get("fresh", b"k").unwrap().as_deref(),
            Some(&b"v"[..])
        );
    }
}
