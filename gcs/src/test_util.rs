//! Test helpers shared by the unit tests.

use std::sync::Arc;

use crate::{FileStore, Storage};

/// A fresh [`FileStore`] in a temporary directory (kept while the guard lives).
pub(crate) fn file_store() -> (tempfile::TempDir, Arc<dyn Storage>) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(FileStore::open(dir.path()).unwrap());
    (dir, store)
}
