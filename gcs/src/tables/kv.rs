//! User-facing namespaced key/value store (Ray's "internal KV").

use std::sync::{Arc, Mutex};

use crate::error::{GcsError, Result};
use crate::storage::Storage;

const TABLE: &str = "kv";

/// Namespaced byte KV for drivers and libraries (function tables, library
/// state, small coordination data).
///
/// Keys are arbitrary bytes scoped by a namespace string; a key's storage
/// form is `len(ns) as u32 BE ++ ns ++ key`, so namespaces never bleed into
/// each other even when one is a prefix of another.
pub struct Kv {
    store: Arc<dyn Storage>,
    lock: Mutex<()>,
}

impl std::fmt::Debug for Kv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kv").finish_non_exhaustive()
    }
}

fn ns_prefix(namespace: &str) -> Result<Vec<u8>> {
    let len = u32::try_from(namespace.len())
        .map_err(|_| GcsError::InvalidArgument("kv namespace too long".into()))?;
    let mut out = Vec::with_capacity(4 + namespace.len());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(namespace.as_bytes());
    Ok(out)
}

fn full_key(namespace: &str, key: &[u8]) -> Result<Vec<u8>> {
    let mut out = ns_prefix(namespace)?;
    out.extend_from_slice(key);
    Ok(out)
}

impl Kv {
    pub fn new(store: Arc<dyn Storage>) -> Self {
        Self {
            store,
            lock: Mutex::new(()),
        }
    }

    fn guard(&self) -> std::sync::MutexGuard<'_, ()> {
        self.lock.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn get(&self, namespace: &str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.store.get(TABLE, &full_key(namespace, key)?)
    }

    /// Stores `value` under `key`. With `overwrite == false` an existing
    /// value is kept. Returns whether the key was newly added (like Ray's
    /// `internal_kv_put`).
    pub fn put(&self, namespace: &str, key: &[u8], value: &[u8], overwrite: bool) -> Result<bool> {
        let k = full_key(namespace, key)?;
        let _guard = self.guard();
        let existed = self.store.get(TABLE, &k)?.is_some();
        if !existed || overwrite {
            self.store.put(TABLE, &k, value)?;
        }
        Ok(!existed)
    }

    /// Removes `key`; returns whether it existed.
    pub fn delete(&self, namespace: &str, key: &[u8]) -> Result<bool> {
        self.store.delete(TABLE, &full_key(namespace, key)?)
    }

    /// Keys (without the namespace) starting with `prefix`, in byte order.
    pub fn keys(&self, namespace: &str, prefix: &[u8]) -> Result<Vec<Vec<u8>>> {
        let ns_len = ns_prefix(namespace)?.len();
        let p = full_key(namespace, prefix)?;
        Ok(self
            .store
            .scan_prefix(TABLE, &p)?
            .into_iter()
            .map(|(mut k, _)| k.split_off(ns_len))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::file_store;

    #[test]
    fn put_get_overwrite_delete() {
        let (_dir, store) = file_store();
        let kv = Kv::new(store);
        assert_eq!(kv.get("ns", b"k").unwrap(), None);
        assert!(kv.put("ns", b"k", b"v1", false).unwrap());
        assert!(!kv.put("ns", b"k", b"v2", false).unwrap());
        assert_eq!(kv.get("ns", b"k").unwrap().as_deref(), Some(&b"v1"[..]));
        assert!(!kv.put("ns", b"k", b"v3", true).unwrap());
        assert_eq!(kv.get("ns", b"k").unwrap().as_deref(), Some(&b"v3"[..]));
        assert_eq!(kv.get("other", b"k").unwrap(), None);
        assert!(kv.delete("ns", b"k").unwrap());
        assert!(!kv.delete("ns", b"k").unwrap());
    }

    #[test]
    fn prefix_listing_is_namespace_scoped() {
        let (_dir, store) = file_store();
        let kv = Kv::new(store);
        for key in [&b"fn:b"[..], b"fn:a", b"fx", b"other"] {
            kv.put("app", key, b"1", true).unwrap();
        }
        // "ap" is a string prefix of "app" but a different namespace.
        kv.put("ap", b"pfn:z", b"1", true).unwrap();
        kv.put("", b"fn:root", b"1", true).unwrap();

        assert_eq!(
            kv.keys("app", b"fn:").unwrap(),
            vec![b"fn:a".to_vec(), b"fn:b".to_vec()]
        );
        assert_eq!(kv.keys("app", b"f").unwrap().len(), 3);
        assert_eq!(kv.keys("app", b"").unwrap().len(), 4);
        assert_eq!(kv.keys("ap", b"").unwrap(), vec![b"pfn:z".to_vec()]);
        assert_eq!(kv.keys("", b"").unwrap(), vec![b"fn:root".to_vec()]);
    }
}
