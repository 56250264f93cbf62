//! Typed records over a [`Storage`]: what the control plane writes.
//!
//! * node and actor records ([`NodeInfo`], [`ActorRecord`]): written behind
//!   by the service as they change, read back only when a restarted control
//!   plane retires what its predecessor left alive;
//! * jobs ([`JobRecord`]) and the user KV ([`Kv`]): written through;
//! * id counters ([`Counters`]): node indexes, placement group and job ids;
//! * tenants ([`TenantRecord`], token hashes) and the cluster's node and
//!   admin credentials ([`ClusterCredentials`]): written through.
//!
//! Each record type names its table and how its key is encoded
//! ([`Record`]); [`Table`] turns that into typed get/put/scan with
//! serde_json values. String keys are stored as UTF-8, numeric ids as
//! big-endian `u64` so scans come back in id order.

mod actor;
mod job;
mod kv;
mod meta;
mod node;
mod tenant;

use std::fmt::Display;
use std::marker::PhantomData;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Serialize;

pub use actor::{ActorRecord, ActorState, ActorTable};
pub use job::{finished_jobs, JobRecord, JobState, JobTable};
pub use kv::Kv;
pub use meta::{Counter, Counters};
pub use node::{NodeInfo, NodeState, NodeTable, Resources};
pub use tenant::{ClusterCredentials, CredentialTable, TenantQuotas, TenantRecord, TenantTable};

use crate::error::{GcsError, Result};
use crate::storage::Storage;

/// A value stored in its own table under a key derived from itself.
pub trait Record: Serialize + DeserializeOwned {
    /// Storage table name.
    const TABLE: &'static str;
    /// Human name of the record kind, used in [`GcsError::NotFound`].
    const WHAT: &'static str;
    /// The lookup key type (`str` or `u64`).
    type Key: ?Sized + Display;

    /// Encodes a lookup key into storage bytes.
    fn encode_key(key: &Self::Key) -> Vec<u8>;

    /// The storage key of this record.
    fn storage_key(&self) -> Vec<u8>;
}

/// A typed view of one storage table holding records of type `R`.
pub struct Table<R> {
    store: Arc<dyn Storage>,
    _record: PhantomData<fn() -> R>,
}

impl<R> Clone for Table<R> {
    fn clone(&self) -> Self {
        Self {
            store: Arc::clone(&self.store),
            _record: PhantomData,
        }
    }
}

impl<R> std::fmt::Debug for Table<R>
where
    R: Record,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Table").field("table", &R::TABLE).finish()
    }
}

impl<R: Record> Table<R> {
    /// A view of `R`'s table in `store`.
    pub fn new(store: Arc<dyn Storage>) -> Self {
        Self {
            store,
            _record: PhantomData,
        }
    }

    /// Reads the record under `key`.
    pub fn get(&self, key: &R::Key) -> Result<Option<R>> {
        let raw = R::encode_key(key);
        match self.store.get(R::TABLE, &raw)? {
            Some(bytes) => decode::<R>(&raw, &bytes).map(Some),
            None => Ok(None),
        }
    }

    /// Reads the record under `key`, failing with [`GcsError::NotFound`].
    pub fn require(&self, key: &R::Key) -> Result<R> {
        self.get(key)?
            .ok_or_else(|| GcsError::not_found(R::WHAT, key))
    }

    /// Inserts or overwrites `record`.
    pub fn put(&self, record: &R) -> Result<()> {
        let (key, value) = encode(record)?;
        self.store.put(R::TABLE, &key, &value)
    }

    /// Removes the record under `key`; returns whether it existed.
    pub fn delete(&self, key: &R::Key) -> Result<bool> {
        self.store.delete(R::TABLE, &R::encode_key(key))
    }

    /// Every record, in key order.
    pub fn all(&self) -> Result<Vec<R>> {
        self.store
            .scan(R::TABLE)?
            .into_iter()
            .map(|(k, v)| decode::<R>(&k, &v))
            .collect()
    }
}

/// Serializes `record` into its `(key, value)` storage pair.
pub(crate) fn encode<R: Record>(record: &R) -> Result<(Vec<u8>, Vec<u8>)> {
    let key = record.storage_key();
    let value = serde_json::to_vec(record).map_err(|source| GcsError::Corrupt {
        table: R::TABLE,
        key: display_key(&key),
        source,
    })?;
    Ok((key, value))
}

fn decode<R: Record>(key: &[u8], bytes: &[u8]) -> Result<R> {
    serde_json::from_slice(bytes).map_err(|source| GcsError::Corrupt {
        table: R::TABLE,
        key: display_key(key),
        source,
    })
}

/// Encodes a numeric id so byte order equals numeric order.
pub(crate) fn id_key(id: u64) -> Vec<u8> {
    id.to_be_bytes().to_vec()
}

/// Renders a raw storage key for error messages.
pub(crate) fn display_key(key: &[u8]) -> String {
    if let Ok(arr) = <[u8; 8]>::try_from(key) {
        // Numeric ids are the only 8-byte binary keys we write.
        if std::str::from_utf8(key).is_err() || key.iter().any(|b| b.is_ascii_control()) {
            return u64::from_be_bytes(arr).to_string();
        }
    }
    match std::str::from_utf8(key) {
        Ok(s) if !s.chars().any(char::is_control) => s.to_owned(),
        _ => key.iter().map(|b| format!("{b:02x}")).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_key_renders_ids_strings_and_binary() {
        assert_eq!(display_key(&id_key(42)), "42");
        assert_eq!(display_key(b"node-1"), "node-1");
        assert_eq!(display_key(&[0xff, 0x00, 0x01]), "ff0001");
    }

    #[test]
    fn corrupt_value_is_reported_with_table_and_key() {
        let (_dir, store) = crate::test_util::file_store();
        store.put(NodeInfo::TABLE, b"n1", b"not json").unwrap();
        let err = NodeTable::new(store).get("n1").unwrap_err();
        match err {
            GcsError::Corrupt { table, key, .. } => {
                assert_eq!(table, NodeInfo::TABLE);
                assert_eq!(key, "n1");
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}
