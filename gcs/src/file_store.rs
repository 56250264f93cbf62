//! Durable embedded [`Storage`] backed by one redb file.

use std::fs;
use std::path::{Path, PathBuf};

use redb::{Database, TableDefinition, TableError};

use crate::error::{GcsError, Result};
use crate::storage::{Entry, Storage, WriteOp};

/// File name of the database inside the data directory.
pub const DB_FILE: &str = "gcs.redb";

type Def<'a> = TableDefinition<'a, &'static [u8], &'static [u8]>;

/// A [`Storage`] persisted in `<dir>/gcs.redb`.
///
/// Every write is its own fully durable redb transaction (fsync on commit),
/// so anything a call returned `Ok` for survives a crash. The file is locked
/// while open: a second `FileStore` on the same directory fails until the
/// first is dropped.
pub struct FileStore {
    db: Database,
    path: PathBuf,
}

impl std::fmt::Debug for FileStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileStore")
            .field("path", &self.path)
            .finish()
    }
}

impl FileStore {
    /// Opens (creating if needed) the store under data directory `dir`.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        fs::create_dir_all(dir).map_err(GcsError::storage)?;
        let path = dir.join(DB_FILE);
        let db = Database::create(&path).map_err(GcsError::storage)?;
        tracing::debug!(path = %path.display(), "opened GCS file store");
        Ok(Self { db, path })
    }

    /// Path of the database file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn storage_err(err: impl Into<redb::Error>) -> GcsError {
    GcsError::storage(err.into())
}

impl Storage for FileStore {
    fn get(&self, table: &str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let txn = self.db.begin_read().map_err(storage_err)?;
        let t = match txn.open_table(Def::new(table)) {
            Ok(t) => t,
            Err(TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(storage_err(e)),
        };
        let value = t.get(key).map_err(storage_err)?;
        Ok(value.map(|v| v.value().to_vec()))
    }

    fn put(&self, table: &str, key: &[u8], value: &[u8]) -> Result<()> {
        self.write_batch(&[WriteOp::Put { table, key, value }])
    }

    fn delete(&self, table: &str, key: &[u8]) -> Result<bool> {
        let txn = self.db.begin_write().map_err(storage_err)?;
        let existed = {
            let mut t = txn.open_table(Def::new(table)).map_err(storage_err)?;
            let old = t.remove(key).map_err(storage_err)?;
            old.is_some()
        };
        if existed {
            txn.commit().map_err(storage_err)?;
        } else {
            txn.abort().map_err(storage_err)?;
        }
        Ok(existed)
    }

    fn scan_prefix(&self, table: &str, prefix: &[u8]) -> Result<Vec<Entry>> {
        let txn = self.db.begin_read().map_err(storage_err)?;
        let t = match txn.open_table(Def::new(table)) {
            Ok(t) => t,
            Err(TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(storage_err(e)),
        };
        let mut out = Vec::new();
        for item in t.range::<&[u8]>(prefix..).map_err(storage_err)? {
            let (k, v) = item.map_err(storage_err)?;
            if !k.value().starts_with(prefix) {
                break;
            }
            out.push((k.value().to_vec(), v.value().to_vec()));
        }
        Ok(out)
    }

    fn write_batch(&self, ops: &[WriteOp<'_>]) -> Result<()> {
        let txn = self.db.begin_write().map_err(storage_err)?;
        for op in ops {
            match *op {
                WriteOp::Put { table, key, value } => {
                    let mut t = txn.open_table(Def::new(table)).map_err(storage_err)?;
                    t.insert(key, value).map_err(storage_err)?;
                }
                WriteOp::Delete { table, key } => {
                    let mut t = txn.open_table(Def::new(table)).map_err(storage_err)?;
                    t.remove(key).map_err(storage_err)?;
                }
            }
        }
        txn.commit().map_err(storage_err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conformance() {
        let dir = tempfile::tempdir().unwrap();
        crate::storage::conformance::check(&FileStore::open(dir.path()).unwrap());
    }

    #[test]
    fn survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = FileStore::open(dir.path().join("nested")).unwrap();
            store.put("t", b"k", b"v").unwrap();
            store.put("t", b"gone", b"x").unwrap();
            assert!(store.delete("t", b"gone").unwrap());
        }
        let store = FileStore::open(dir.path().join("nested")).unwrap();
        assert_eq!(store.get("t", b"k").unwrap().as_deref(), Some(&b"v"[..]));
        assert_eq!(store.get("t", b"gone").unwrap(), None);
        assert!(store.path().ends_with(DB_FILE));
    }

    #[test]
    fn second_open_of_same_dir_fails_while_first_is_open() {
        let dir = tempfile::tempdir().unwrap();
        let _first = FileStore::open(dir.path()).unwrap();
        assert!(matches!(
            FileStore::open(dir.path()),
            Err(GcsError::Storage(_))
        ));
    }
}
