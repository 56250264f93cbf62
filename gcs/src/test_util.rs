//! Test helpers shared by the unit tests.

use std::sync::Arc;

use crate::{FileStore, MemoryStore, Storage};

/// Runs `f` once against a fresh [`MemoryStore`] and once against a fresh
/// [`FileStore`] in a temporary directory.
pub(crate) fn on_both_stores(f: impl Fn(Arc<dyn Storage>)) {
    f(Arc::new(MemoryStore::new()));
    let dir = tempfile::tempdir().unwrap();
    f(Arc::new(FileStore::open(dir.path()).unwrap()));
}
