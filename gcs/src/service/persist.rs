//! Write-behind persistence for the service's hot state.
//!
//! The service keeps nodes, actors and placement groups in memory and queues
//! their records here; a background thread writes everything queued as one
//! [`Storage::write_batch`] every `flush_interval` (5 ms by default). With the
//! [`crate::FileStore`] that is one fsync'd redb transaction per interval
//! however many records changed (group commit), instead of one per record.
//! Several writes to one key within an interval collapse into the last.
//!
//! Durability: a record is stored at most one interval (plus the commit)
//! after the RPC that changed it returned. A crash of the head loses at most
//! that window; a restarted control plane takes over what was stored, and
//! nodes reconnecting report what they hold (see `recover.rs`). A reply that
//! must survive such a crash first waits for its record
//! ([`Persister::flush_record`]).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::storage::{Storage, WriteOp};

type Key = (&'static str, Vec<u8>);

#[derive(Default)]
struct Queue {
    /// Latest value per key since the last batch was taken (`None`: delete).
    pending: HashMap<Key, Option<Vec<u8>>>,
    /// Keys of the batch being written now.
    writing: HashSet<Key>,
}

impl Queue {
    /// Whether the latest value queued under `key` is in storage.
    fn stored(&self, key: &Key) -> bool {
        !self.pending.contains_key(key) && !self.writing.contains(key)
    }
}

struct Shared {
    store: Arc<dyn Storage>,
    queue: Mutex<Queue>,
    /// Held while a batch is taken and written, so batches land in order.
    writer: Mutex<()>,
    closed: AtomicBool,
}

impl Shared {
    fn queue(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn flush(&self) {
        let _writer = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let batch = {
            let mut queue = self.queue();
            let batch = std::mem::take(&mut queue.pending);
            queue.writing = batch.keys().cloned().collect();
            batch
        };
        if batch.is_empty() {
            return;
        }
        let ops: Vec<WriteOp<'_>> = batch
            .iter()
            .map(|((table, key), value)| match value {
                Some(value) => WriteOp::Put { table, key, value },
                None => WriteOp::Delete { table, key },
            })
            .collect();
        if let Err(e) = self.store.write_batch(&ops) {
            tracing::error!(error = %e, records = ops.len(), "control plane: persisting records failed");
        }
        self.queue().writing.clear();
    }
}

/// Queues record writes and flushes them in the background.
pub(crate) struct Persister {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Persister {
    pub fn new(store: Arc<dyn Storage>, flush_interval: Duration) -> Self {
        let shared = Arc::new(Shared {
            store,
            queue: Mutex::new(Queue::default()),
            writer: Mutex::new(()),
            closed: AtomicBool::new(false),
        });
        let worker = shared.clone();
        let thread = std::thread::Builder::new()
            .name("gcs-persist".into())
            .spawn(move || {
                while !worker.closed.load(Ordering::Acquire) {
                    std::thread::park_timeout(flush_interval);
                    worker.flush();
                }
            })
            .expect("spawning the control plane's persist thread");
        Self {
            shared,
            thread: Some(thread),
        }
    }

    /// Queues `value` under `key` in `table`.
    pub fn put(&self, table: &'static str, key: Vec<u8>, value: Vec<u8>) {
        self.queue(table, key, Some(value));
    }

    /// Queues the removal of `key` from `table`.
    pub fn delete(&self, table: &'static str, key: Vec<u8>) {
        self.queue(table, key, None);
    }

    fn queue(&self, table: &'static str, key: Vec<u8>, value: Option<Vec<u8>>) {
        self.shared.queue().pending.insert((table, key), value);
    }

    /// Writes everything queued so far, now, in the calling thread.
    pub fn flush(&self) {
        self.shared.flush();
    }

    /// Whether the last value queued under `key` in `table` is stored.
    pub fn is_stored(&self, table: &'static str, key: &[u8]) -> bool {
        self.shared.queue().stored(&(table, key.to_vec()))
    }

    /// Returns once the last value queued under `key` in `table` is stored
    /// (at once if it already is): flushes, or waits for the batch holding
    /// it. Blocks the calling thread.
    pub fn flush_record(&self, table: &'static str, key: &[u8]) {
        if !self.is_stored(table, key) {
            // Taking the writer lock waits for a batch in flight; what is
            // still pending is written here.
            self.shared.flush();
        }
    }
}

impl Drop for Persister {
    fn drop(&mut self) {
        self.shared.closed.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
        self.shared.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::file_store;

    #[test]
    fn writes_land_coalesced_and_in_order() {
        let (_dir, store) = file_store();
        let p = Persister::new(store.clone(), Duration::from_secs(3600));
        p.put("t", b"a".to_vec(), b"1".to_vec());
        p.put("t", b"a".to_vec(), b"2".to_vec());
        p.put("t", b"b".to_vec(), b"x".to_vec());
        p.delete("t", b"b".to_vec());
        assert_eq!(store.get("t", b"a").unwrap(), None, "not before a flush");
        p.flush();
        assert_eq!(store.get("t", b"a").unwrap().as_deref(), Some(&b"2"[..]));
        assert_eq!(store.get("t", b"b").unwrap(), None);
        p.put("t", b"c".to_vec(), b"3".to_vec());
        drop(p);
        assert_eq!(store.get("t", b"c").unwrap().as_deref(), Some(&b"3"[..]));
    }

    #[test]
    fn flush_record_stores_that_record_and_what_was_queued_before() {
        let (_dir, store) = file_store();
        let p = Persister::new(store.clone(), Duration::from_secs(3600));
        assert!(p.is_stored("t", b"never"));
        p.put("t", b"a".to_vec(), b"1".to_vec());
        p.put("t", b"b".to_vec(), b"2".to_vec());
        assert!(!p.is_stored("t", b"b"));
        p.flush_record("t", b"b");
        assert!(p.is_stored("t", b"b") && p.is_stored("t", b"a"));
        assert_eq!(store.get("t", b"b").unwrap().as_deref(), Some(&b"2"[..]));
        assert_eq!(store.get("t", b"a").unwrap().as_deref(), Some(&b"1"[..]));
        p.delete("t", b"a".to_vec());
        assert!(!p.is_stored("t", b"a"));
        p.flush_record("t", b"a");
        assert_eq!(store.get("t", b"a").unwrap(), None);
    }

    #[test]
    fn the_background_thread_flushes() {
        let (_dir, store) = file_store();
        let p = Persister::new(store.clone(), Duration::from_millis(2));
        p.put("t", b"k".to_vec(), b"v".to_vec());
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while store.get("t", b"k").unwrap().is_none() {
            assert!(std::time::Instant::now() < deadline);
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}
