//! In-memory [`Storage`]: for tests and ephemeral clusters.

use std::collections::{BTreeMap, HashMap};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::error::Result;
use crate::storage::{Entry, Storage, WriteOp};

type Tables = HashMap<String, BTreeMap<Vec<u8>, Vec<u8>>>;

/// A [`Storage`] that keeps everything in process memory and loses it on drop.
#[derive(Debug, Default)]
pub struct MemoryStore {
    tables: RwLock<Tables>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    // A panic while holding the lock cannot leave a map half-updated in a
    // way that matters here, so poisoning is ignored.
    fn read(&self) -> RwLockReadGuard<'_, Tables> {
        self.tables.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Tables> {
        self.tables.write().unwrap_or_else(|e| e.into_inner())
    }
}

impl Storage for MemoryStore {
    fn get(&self, table: &str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.read().get(table).and_then(|t| t.get(key)).cloned())
    }

    fn put(&self, table: &str, key: &[u8], value: &[u8]) -> Result<()> {
        self.write()
            .entry(table.to_owned())
            .or_default()
            .insert(key.to_vec(), value.to_vec());
        Ok(())
    }

    fn delete(&self, table: &str, key: &[u8]) -> Result<bool> {
        Ok(self
            .write()
            .get_mut(table)
            .is_some_and(|t| t.remove(key).is_some()))
    }

    fn scan_prefix(&self, table: &str, prefix: &[u8]) -> Result<Vec<Entry>> {
        let tables = self.read();
        let Some(t) = tables.get(table) else {
            return Ok(Vec::new());
        };
        Ok(t.range(prefix.to_vec()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    fn write_batch(&self, ops: &[WriteOp<'_>]) -> Result<()> {
        let mut tables = self.write();
        for op in ops {
            match *op {
                WriteOp::Put { table, key, value } => {
                    tables
                        .entry(table.to_owned())
                        .or_default()
                        .insert(key.to_vec(), value.to_vec());
                }
                WriteOp::Delete { table, key } => {
                    if let Some(t) = tables.get_mut(table) {
                        t.remove(key);
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conformance() {
        crate::storage::conformance::check(&MemoryStore::new());
    }
}
