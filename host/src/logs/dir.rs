//! The node's log files: one stream per task and per actor under
//! `<data-dir>/logs`, cut into segment files, with a cap per call, one per
//! tenant (`host tenant add|set --max-log-bytes`: the tenant's own oldest
//! segments are deleted first, never another tenant's) and one for the
//! whole directory, in bytes and in files (the tenant holding the most
//! gives its oldest segments first).
//!
//! Offsets are positions in a stream (every segment it ever had, deleted
//! ones included), so a reader's `next_offset` stays valid while older
//! segments go.

use crate::fastmap::FastMap;
use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use reef_core::TenantId;

use super::record::{self, Stream};
use crate::error::{ErrorCode, ReefError, ReefResult};

/// A segment file is closed and a new one started past this size.
const SEGMENT_BYTES: u64 = 16 << 20;
/// Most segment files kept (many small task logs are bounded by this).
const MAX_FILES: usize = 20_000;
/// Calls whose place in a stream is remembered (older calls of an actor
/// are then read as part of the actor's log only); past it the tenant with
/// the most calls indexed loses its oldest first.
const INDEX_CALLS: usize = 100_000;
/// Deleting stops once the directory is this fraction of its cap.
const EVICT_TO: f64 = 0.9;
/// Output is buffered; it reaches the file when the call ends, when a
/// segment fills, or with the first write this long after the last flush
/// (there is no timer: a call that writes and then goes quiet keeps its
/// last lines buffered until it ends).
const FLUSH_EVERY: Duration = Duration::from_millis(100);
/// The least a page holds (one whole record).
const MIN_PAGE: usize = record::MAX_RECORD + record::HEADER;

#[derive(Clone, Copy, Debug)]
pub struct LogLimits {
    /// Bytes one task or actor call may write; the rest is dropped (and counted).
    pub call_bytes: u64,
    /// Bytes of all log files of the node.
    pub node_bytes: u64,
}

impl Default for LogLimits {
    fn default() -> Self {
        LogLimits {
            call_bytes: 16 << 20,
            node_bytes: 1 << 30,
        }
    }
}

/// Whose log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Key {
    Task(u64),
    Actor(u64),
}

/// Whose stream a log is in (what [`LogDir::owner`] answers).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogOwner {
    /// The task whose return id this is.
    Task(u64),
    /// The actor with this id (its own lines and its calls').
    Actor(u64),
}

/// What a reader asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// A task's or an actor call's return id, else an actor id.
    Any,
    Call,
    Actor,
}

struct Segment {
    seq: u64,
    n: u32,
    base: u64,
    /// Bytes written (known when the segment is no longer the last).
    len: u64,
}

#[derive(Default)]
struct StreamState {
    segments: VecDeque<Segment>,
    /// Where the stream ends (the next write goes there).
    end: u64,
    next_n: u32,
    /// A call is writing (its last segment must stay).
    writing: bool,
    /// The task finished or the actor ended: nothing more will come.
    ended: bool,
    /// Whose task or actor it is (kept while its log is: readers are
    /// checked against it after the actor ended; its bytes count against
    /// that tenant's `--max-log-bytes`).
    tenant: Option<TenantId>,
}

/// Where a call's lines are in its stream.
#[derive(Clone, Copy)]
struct Span {
    key: Key,
    start: u64,
    end: Option<u64>,
}

#[derive(Default)]
struct Inner {
    streams: FastMap<Key, StreamState>,
    calls: FastMap<u64, Span>,
    /// The calls in `calls`, each tenant's oldest first.
    call_orders: FastMap<TenantId, VecDeque<u64>>,
    files: usize,
    next_seq: u64,
    /// Bytes of the segments of each tenant's streams (tenants with any).
    tenant_bytes: HashMap<TenantId, u64>,
}

impl Inner {
    /// Forgets the oldest indexed call of the tenant with the most.
    fn forget_oldest_call(&mut self) {
        let Some((tenant, order)) = self.call_orders.iter_mut().max_by_key(|(_, o)| o.len()) else {
            return;
        };
        if let Some(old) = order.pop_front() {
            self.calls.remove(&old);
        }
        if order.is_empty() {
            let tenant = tenant.clone();
            self.call_orders.remove(&tenant);
        }
    }

    fn add_tenant_bytes(&mut self, tenant: &TenantId, len: u64) -> u64 {
        let n = self.tenant_bytes.entry(tenant.clone()).or_default();
        *n += len;
        *n
    }

    fn sub_tenant_bytes(&mut self, tenant: &TenantId, len: u64) {
        if let Some(n) = self.tenant_bytes.get_mut(tenant) {
            *n = n.saturating_sub(len);
            if *n == 0 {
                self.tenant_bytes.remove(tenant);
            }
        }
    }
}

/// A tenant's cap on its logs on this node (`None`: only the node's).
pub type TenantCaps = Box<dyn Fn(&TenantId) -> Option<u64> + Send + Sync>;

/// The node's log directory.
pub struct LogDir {
    dir: PathBuf,
    limits: LogLimits,
    inner: Mutex<Inner>,
    /// Bytes in the directory's files.
    total: AtomicU64,
    /// Each tenant's cap (set once by the node, from its quotas).
    tenant_caps: OnceLock<TenantCaps>,
}

/// One page of a log.
#[derive(Debug, Default)]
pub struct Page {
    pub lines: Vec<(Stream, String)>,
    pub next_offset: u64,
    /// Nothing more now; with `finished`, nothing more ever.
    pub at_end: bool,
    pub finished: bool,
    /// Bytes between the offset asked for and the first kept byte (deleted by the cap).
    pub skipped: u64,
}

impl LogDir {
    /// Opens (emptying) the node's log directory.
    pub fn open(dir: PathBuf, limits: LogLimits) -> std::io::Result<Arc<LogDir>> {
        // Files of an earlier run of the node name calls that no longer exist.
        if dir.exists() {
            std::fs::remove_dir_all(&dir)?;
        }
        std::fs::create_dir_all(&dir)?;
        Ok(Arc::new(LogDir {
            dir,
            limits,
            inner: Mutex::new(Inner::default()),
            total: AtomicU64::new(0),
            tenant_caps: OnceLock::new(),
        }))
    }

    /// Caps each tenant's logs (`caps` answers a tenant's `--max-log-bytes`).
    pub fn cap_tenants(&self, caps: TenantCaps) {
        let _ = self.tenant_caps.set(caps);
    }

    /// Bytes of `tenant`'s logs here now.
    pub fn tenant_bytes(&self, tenant: &TenantId) -> u64 {
        let inner = self.inner.lock().unwrap();
        inner.tenant_bytes.get(tenant).copied().unwrap_or(0)
    }

    pub fn limits(&self) -> LogLimits {
        self.limits
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Bytes in the directory's files now.
    pub fn total_bytes(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }

    /// The writer of a task attempt's output (its return id), `tenant`'s.
    pub fn task(self: &Arc<Self>, return_id: u64, tenant: &TenantId) -> CallLog {
        self.begin(Key::Task(return_id), tenant, return_id)
    }

    /// The writer of an actor call's output, appended to the actor's log.
    pub fn actor_call(self: &Arc<Self>, actor: u64, tenant: &TenantId, return_id: u64) -> CallLog {
        self.begin(Key::Actor(actor), tenant, return_id)
    }

    /// The writer of an actor's constructor output.
    pub fn actor_init(self: &Arc<Self>, actor: u64, tenant: &TenantId) -> CallLog {
        self.begin(Key::Actor(actor), tenant, actor)
    }

    /// Whose log `owner`'s stream is, while the stream is here (a task that
    /// wrote nothing has none).
    pub fn tenant_of(&self, owner: LogOwner) -> Option<TenantId> {
        let key = match owner {
            LogOwner::Task(task) => Key::Task(task),
            LogOwner::Actor(actor) => Key::Actor(actor),
        };
        let inner = self.inner.lock().unwrap();
        inner.streams.get(&key)?.tenant.clone()
    }

    /// The actor ended: followers of its log stop once they read it all.
    pub fn actor_ended(&self, actor: u64) {
        if let Some(s) = self
            .inner
            .lock()
            .unwrap()
            .streams
            .get_mut(&Key::Actor(actor))
        {
            s.ended = true;
        }
    }

    /// Starts call `call`'s output in `tenant`'s stream `key`, noting the
    /// stream's tenant (one lock a call to start, one to end: every task
    /// takes both).
    fn begin(self: &Arc<Self>, key: Key, tenant: &TenantId, call: u64) -> CallLog {
        let mut inner = self.inner.lock().unwrap();
        let stream = inner.streams.entry(key).or_default();
        // A stream is one task's or one actor's: its tenant never changes
        // (an actor's first call notes it; its bytes then move to it).
        let moved = match &stream.tenant {
            Some(t) if t == tenant => None,
            _ => {
                let had = stream.segments.iter().map(|s| s.len).sum::<u64>();
                stream.tenant.replace(tenant.clone()).map(|old| (old, had))
            }
        };
        stream.writing = true;
        stream.ended = false;
        let start = stream.end;
        if let Some((old, had)) = moved {
            inner.sub_tenant_bytes(&old, had);
            inner.add_tenant_bytes(tenant, had);
        }
        if key != Key::Actor(call) {
            // An actor's constructor is read with the actor's log only.
            if inner
                .calls
                .insert(
                    call,
                    Span {
                        key,
                        start,
                        end: None,
                    },
                )
                .is_none()
            {
                let order = match inner.call_orders.get_mut(tenant) {
                    Some(order) => order,
                    None => inner.call_orders.entry(tenant.clone()).or_default(),
                };
                order.push_back(call);
                if inner.calls.len() > INDEX_CALLS {
                    inner.forget_oldest_call();
                }
            }
        }
        drop(inner);
        CallLog {
            dir: self.clone(),
            key,
            call,
            file: None,
            written: 0,
            dropped: 0,
            last_flush: Instant::now(),
            finished: false,
        }
    }

    fn file_name(&self, key: Key, n: u32) -> PathBuf {
        match key {
            Key::Task(id) => self.dir.join(format!("task-{id:016x}.{n}.log")),
            Key::Actor(id) => self.dir.join(format!("actor-{id:016x}.{n}.log")),
        }
    }

    /// The segment a write of `len` bytes goes to: the stream's last, or a
    /// new one when there is none or it is full. Returns its path, and the
    /// stream's tenant when the write took it past its cap.
    fn segment_for(&self, key: Key, len: u64) -> (PathBuf, Option<(TenantId, u64)>) {
        let mut inner = self.inner.lock().unwrap();
        let seq = inner.next_seq;
        let stream = inner.streams.entry(key).or_default();
        let full = match stream.segments.back() {
            Some(last) => last.base + last.len + len > last.base + SEGMENT_BYTES && last.len > 0,
            None => true,
        };
        let n = if full {
            let n = stream.next_n;
            stream.next_n += 1;
            stream.segments.push_back(Segment {
                seq,
                n,
                base: stream.end,
                len: 0,
            });
            n
        } else {
            stream.segments.back().unwrap().n
        };
        stream.end += len;
        if let Some(last) = stream.segments.back_mut() {
            last.len += len;
        }
        let tenant = stream.tenant.clone();
        if full {
            inner.next_seq += 1;
            inner.files += 1;
        }
        let over = tenant.and_then(|tenant| {
            let used = inner.add_tenant_bytes(&tenant, len);
            let cap = self.tenant_caps.get().and_then(|caps| caps(&tenant))?;
            (used > cap).then_some((tenant, cap))
        });
        drop(inner);
        (self.file_name(key, n), over)
    }

    /// Ends call `call`'s output in stream `key`; whether the directory now
    /// holds too many files.
    fn finished(&self, key: Key, call: u64) -> bool {
        let mut inner = self.inner.lock().unwrap();
        let Some(stream) = inner.streams.get_mut(&key) else {
            return inner.files > MAX_FILES;
        };
        stream.writing = false;
        if matches!(key, Key::Task(_)) {
            stream.ended = true;
        }
        let end = stream.end;
        if stream.segments.is_empty() && matches!(key, Key::Task(_)) {
            // Nothing written: no file, only the (empty) call is remembered.
            inner.streams.remove(&key);
        }
        if let Some(span) = inner.calls.get_mut(&call) {
            span.end = Some(end);
        }
        inner.files > MAX_FILES
    }

    /// Deletes segments not being written while the directory is over its
    /// cap or holds too many files: the tenant holding the most (files when
    /// there are too many, else bytes) gives its oldest first, so one
    /// tenant's flood of logs deletes its own before anyone else's.
    fn evict(&self) {
        let cap = self.limits.node_bytes;
        let over = |dir: &LogDir, files: usize| {
            dir.total.load(Ordering::Relaxed) > cap || files > MAX_FILES
        };
        let mut inner = self.inner.lock().unwrap();
        if !over(self, inner.files) {
            return;
        }
        let target = (cap as f64 * EVICT_TO) as u64;
        let files_target = MAX_FILES * 9 / 10;
        // Each tenant's deletable segments, oldest first, and what it holds.
        let mut holders: FastMap<Option<TenantId>, Holder> = FastMap::default();
        for (key, stream) in &inner.streams {
            let holder = holders.entry(stream.tenant.clone()).or_default();
            holder.files += stream.segments.len();
            holder.bytes += stream.segments.iter().map(|seg| seg.len).sum::<u64>();
            holder
                .deletable
                .extend(deletable(stream).map(|seq| (seq, *key)));
        }
        for holder in holders.values_mut() {
            holder
                .deletable
                .make_contiguous()
                .sort_unstable_by_key(|c| c.0);
        }
        loop {
            let by_files = inner.files > files_target;
            if !by_files && self.total.load(Ordering::Relaxed) <= target {
                break;
            }
            let largest = holders
                .values_mut()
                .filter(|h| !h.deletable.is_empty())
                .max_by_key(|h| if by_files { h.files as u64 } else { h.bytes });
            let Some(holder) = largest else {
                break;
            };
            let (_, key) = holder.deletable.pop_front().expect("not empty");
            if let Some(len) = self.delete_first_segment(&mut inner, key) {
                holder.files -= 1;
                holder.bytes = holder.bytes.saturating_sub(len);
            }
        }
    }

    /// Deletes `tenant`'s oldest segments not being written (no other
    /// tenant's) while its logs are over `cap`.
    fn evict_tenant(&self, tenant: &TenantId, cap: u64) {
        let mut inner = self.inner.lock().unwrap();
        let target = (cap as f64 * EVICT_TO) as u64;
        let under = |inner: &Inner| inner.tenant_bytes.get(tenant).copied().unwrap_or(0) <= target;
        if under(&inner) {
            return;
        }
        self.delete_oldest(&mut inner, tenant, under);
    }

    /// Deletes the oldest segments of `tenant`'s streams that no call is
    /// writing, until `enough`.
    fn delete_oldest(&self, inner: &mut Inner, tenant: &TenantId, enough: impl Fn(&Inner) -> bool) {
        // Oldest first: (seq, key).
        let mut candidates: Vec<(u64, Key)> = inner
            .streams
            .iter()
            .filter(|(_, s)| s.tenant.as_ref() == Some(tenant))
            .flat_map(|(key, s)| deletable(s).map(move |seq| (seq, *key)))
            .collect();
        candidates.sort_unstable_by_key(|c| c.0);
        for (_, key) in candidates {
            if enough(inner) {
                break;
            }
            self.delete_first_segment(inner, key);
        }
    }

    /// Deletes the first segment of stream `key` (the stream too when that
    /// was its last and it ended); the segment's length.
    fn delete_first_segment(&self, inner: &mut Inner, key: Key) -> Option<u64> {
        let stream = inner.streams.get_mut(&key)?;
        let seg = stream.segments.pop_front()?;
        let owner = stream.tenant.clone();
        let path = self.file_name(key, seg.n);
        if stream.segments.is_empty() && stream.ended {
            inner.streams.remove(&key);
        }
        inner.files -= 1;
        if let Some(owner) = owner {
            inner.sub_tenant_bytes(&owner, seg.len);
        }
        let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(seg.len);
        if let Err(e) = std::fs::remove_file(&path) {
            tracing::warn!("deleting log file {}: {e}", path.display());
        }
        self.total.fetch_sub(
            size.min(self.total.load(Ordering::Relaxed)),
            Ordering::Relaxed,
        );
        Some(seg.len)
    }

    /// Whose log `id` is on this node: the task's (its return id) or the
    /// actor's (an actor id, or one of its calls); `None` when this node has
    /// no log of `id`.
    pub fn owner(&self, id: u64, target: Target) -> Option<LogOwner> {
        let inner = self.inner.lock().unwrap();
        let call = match target {
            Target::Call | Target::Any => inner.calls.get(&id).map(|span| span.key),
            Target::Actor => None,
        };
        let key = call.or_else(|| {
            let (actor, task) = (Key::Actor(id), Key::Task(id));
            match target {
                Target::Actor | Target::Any if inner.streams.contains_key(&actor) => Some(actor),
                Target::Call | Target::Any if inner.streams.contains_key(&task) => Some(task),
                _ => None,
            }
        })?;
        Some(match key {
            Key::Task(t) => LogOwner::Task(t),
            Key::Actor(a) => LogOwner::Actor(a),
        })
    }

    /// A page of the log of `id` from `offset` (0: its start), at most about
    /// `max_bytes`; `None` when this node has no log of `id`.
    pub fn read(&self, id: u64, target: Target, offset: u64, max_bytes: usize) -> Option<Page> {
        let (key, start, end, finished, segments) = {
            let inner = self.inner.lock().unwrap();
            let span = match target {
                Target::Call | Target::Any => inner.calls.get(&id).copied(),
                Target::Actor => None,
            };
            let span = span.or_else(|| {
                let actor = Key::Actor(id);
                let task = Key::Task(id);
                match target {
                    Target::Actor | Target::Any if inner.streams.contains_key(&actor) => {
                        Some(Span {
                            key: actor,
                            start: 0,
                            end: None,
                        })
                    }
                    Target::Call | Target::Any if inner.streams.contains_key(&task) => Some(Span {
                        key: task,
                        start: 0,
                        end: None,
                    }),
                    _ => None,
                }
            })?;
            let stream = inner.streams.get(&span.key);
            let segments: Vec<(u32, u64, u64)> = stream
                .map(|s| s.segments.iter().map(|g| (g.n, g.base, g.len)).collect())
                .unwrap_or_default();
            let stream_end = stream.map_or(span.start, |s| s.end);
            let ended = stream.is_none_or(|s| s.ended);
            let end = span.end.or(if ended { Some(stream_end) } else { None });
            (span.key, span.start, end, end.is_some(), segments)
        };
        let max = max_bytes.max(MIN_PAGE);
        let mut pos = offset.max(start);
        // Every segment of the stream is gone: all that was written was deleted.
        let deleted = match (segments.is_empty(), end) {
            (true, Some(end)) if pos < end => end - pos,
            _ => 0,
        };
        let mut page = Page {
            finished,
            skipped: deleted,
            ..Page::default()
        };
        pos += deleted;
        let limit = end.unwrap_or(u64::MAX);
        let mut budget = max;
        for (n, base, len) in segments {
            if base + len <= pos {
                continue;
            }
            if pos < base {
                page.skipped += base - pos;
                pos = base;
            }
            if pos >= limit || budget == 0 {
                break;
            }
            let want = (base + len)
                .min(limit)
                .saturating_sub(pos)
                .min(budget as u64) as usize;
            let mut buf = vec![0u8; want];
            let path = self.file_name(key, n);
            let got = match File::open(&path).and_then(|f| read_at(&f, &mut buf, pos - base)) {
                Ok(got) => got,
                Err(_) => break, // deleted meanwhile: the next read skips it
            };
            let (records, used) = record::decode(&buf[..got]);
            for (stream, bytes) in records {
                page.lines
                    .push((stream, String::from_utf8_lossy(bytes).into_owned()));
            }
            pos += used as u64;
            budget -= used;
            if used < want {
                // A record still being written (or the budget cut one).
                break;
            }
        }
        page.next_offset = pos;
        page.at_end = end.is_some_and(|e| pos >= e) || {
            let inner = self.inner.lock().unwrap();
            inner.streams.get(&key).is_none_or(|s| pos >= s.end)
        };
        page.finished = finished && page.at_end;
        Some(page)
    }
}

fn read_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match file.read_at(&mut buf[got..], offset + got as u64)? {
            0 => break,
            n => got += n,
        }
    }
    Ok(got)
}

/// The writer of one call's output (a task attempt, an actor call or its
/// constructor). Writes past the call's cap are dropped and counted; the
/// count is written as a note when the call ends.
pub struct CallLog {
    dir: Arc<LogDir>,
    key: Key,
    call: u64,
    file: Option<(PathBuf, BufWriter<File>)>,
    written: u64,
    dropped: u64,
    last_flush: Instant,
    finished: bool,
}

impl CallLog {
    pub fn write(&mut self, stream: Stream, bytes: &[u8]) {
        for chunk in bytes.chunks(record::MAX_RECORD) {
            self.write_record(stream, chunk);
        }
        if self.last_flush.elapsed() >= FLUSH_EVERY {
            self.flush();
        }
    }

    fn write_record(&mut self, stream: Stream, bytes: &[u8]) {
        let len = (record::HEADER + bytes.len()) as u64;
        if stream != Stream::Note && self.written + len > self.dir.limits.call_bytes {
            self.dropped += bytes.len() as u64;
            return;
        }
        let (path, over) = self.dir.segment_for(self.key, len);
        if self.file.as_ref().is_none_or(|(p, _)| p != &path) {
            self.flush();
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path);
            match file {
                Ok(f) => self.file = Some((path, BufWriter::with_capacity(64 << 10, f))),
                Err(e) => {
                    tracing::warn!("opening log file {}: {e}", path.display());
                    self.file = None;
                }
            }
        }
        let mut buf = Vec::with_capacity(len as usize);
        record::encode(&mut buf, stream, bytes);
        if let Some((_, w)) = &mut self.file {
            if let Err(e) = w.write_all(&buf) {
                tracing::warn!("writing a log file: {e}");
            }
        }
        self.written += len;
        let total = self.dir.total.fetch_add(len, Ordering::Relaxed) + len;
        if let Some((tenant, cap)) = over {
            self.flush();
            self.dir.evict_tenant(&tenant, cap);
        }
        if total > self.dir.limits.node_bytes {
            self.flush();
            self.dir.evict();
        }
    }

    fn flush(&mut self) {
        if let Some((_, w)) = &mut self.file {
            if let Err(e) = w.flush() {
                tracing::warn!("writing a log file: {e}");
            }
        }
        self.last_flush = Instant::now();
    }

    /// Ends the call: notes what the cap dropped, flushes, and marks the
    /// call's span complete.
    pub fn finish(mut self) {
        self.close();
    }

    fn close(&mut self) {
        if self.finished {
            return;
        }
        self.finished = true;
        if self.dropped > 0 {
            let note = format!(
                "{} bytes of output dropped: a call may write {} bytes of logs (--log-call-bytes)",
                self.dropped, self.dir.limits.call_bytes
            );
            self.write_record(Stream::Note, note.as_bytes());
        }
        self.flush();
        self.file = None;
        if self.dir.finished(self.key, self.call) {
            self.dir.evict();
        }
    }
}

impl Drop for CallLog {
    fn drop(&mut self) {
        self.close();
    }
}

/// The error for an id no node has logs of.
pub fn no_logs(id: u64) -> ReefError {
    ReefError::new(
        ErrorCode::UnknownObject,
        format!(
            "no logs for {id:#x} on any node: not a task, actor call or actor id, \
             not run yet, or its logs were deleted by the node's log cap"
        ),
    )
}

/// The segments of `stream` a deletion may take, by sequence number: all
/// but the one a call is writing.
fn deletable(stream: &StreamState) -> impl Iterator<Item = u64> + '_ {
    let writing = usize::from(stream.writing && !stream.segments.is_empty());
    let count = stream.segments.len() - writing;
    stream.segments.iter().take(count).map(|seg| seg.seq)
}

/// What one tenant holds in the directory, for the node cap's eviction.
#[derive(Default)]
struct Holder {
    files: usize,
    bytes: u64,
    /// Its segments no call is writing, oldest first: (seq, stream).
    deletable: VecDeque<(u64, Key)>,
}

/// Reads a whole call's log into the three outputs a driver's `logs` gets
/// (bounded by the call cap, so never more than that in memory).
pub fn whole_call(dir: &LogDir, id: u64) -> ReefResult<Option<Vec<(Stream, String)>>> {
    let mut offset = 0;
    let mut lines = Vec::new();
    loop {
        let Some(page) = dir.read(id, Target::Call, offset, 1 << 20) else {
            return Ok(if offset == 0 { None } else { Some(lines) });
        };
        let progressed = page.next_offset > offset;
        if page.skipped > 0 {
            let note = format!(
                "{} bytes of this log were deleted: the node keeps {} bytes of logs \
                 (--log-dir-bytes), and a tenant's own oldest go first past its --max-log-bytes",
                page.skipped,
                dir.limits().node_bytes
            );
            lines.push((Stream::Note, note));
        }
        lines.extend(page.lines);
        offset = page.next_offset;
        if page.at_end || !progressed {
            return Ok(Some(lines));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(limits: LogLimits) -> (tempfile::TempDir, Arc<LogDir>) {
        let tmp = tempfile::tempdir().unwrap();
        let d = LogDir::open(tmp.path().join("logs"), limits).unwrap();
        (tmp, d)
    }

    #[test]
    fn a_call_is_capped_and_says_so() {
        let (_tmp, d) = dir(LogLimits {
            call_bytes: 1000,
            node_bytes: 1 << 20,
        });
        let mut log = d.task(7, &TenantId::default());
        for i in 0..100 {
            log.write(Stream::Log, format!("line {i}").as_bytes());
        }
        log.finish();
        let page = d.read(7, Target::Any, 0, 1 << 20).unwrap();
        assert!(page.finished);
        assert!(page.lines.len() < 100);
        let (stream, note) = page.lines.last().unwrap();
        assert_eq!(*stream, Stream::Note);
        assert!(note.contains("dropped"), "{note}");
        assert!(d.total_bytes() < 1200);
    }

    #[test]
    fn the_oldest_files_go_first_when_the_node_cap_is_reached() {
        let (_tmp, d) = dir(LogLimits {
            call_bytes: 1 << 20,
            node_bytes: 100_000,
        });
        for id in 0..50u64 {
            let mut log = d.task(id, &TenantId::default());
            log.write(Stream::Stdout, &[b'x'; 10_000]);
            log.finish();
        }
        assert!(d.total_bytes() <= 100_000, "{}", d.total_bytes());
        let gone = d.read(0, Target::Any, 0, 1 << 20).unwrap();
        assert!(gone.lines.is_empty() && gone.skipped > 10_000, "{gone:?}");
        let last = d.read(49, Target::Any, 0, 1 << 20).unwrap();
        assert_eq!(last.lines.len(), 1);
        let files = std::fs::read_dir(d.path()).unwrap().count();
        assert!(files <= 10, "{files} files");
    }

    #[test]
    fn at_the_node_cap_the_tenant_holding_most_gives_first() {
        let (_tmp, d) = dir(LogLimits {
            call_bytes: 1 << 20,
            node_bytes: 100_000,
        });
        let (a, b) = (TenantId::new("a"), TenantId::new("b"));
        // A's logs are the directory's oldest; B (no cap of its own) fills it.
        for id in 0..3u64 {
            let mut log = d.task(id, &a);
            log.write(Stream::Stdout, &[b'a'; 10_000]);
            log.finish();
        }
        for id in 100..150u64 {
            let mut log = d.task(id, &b);
            log.write(Stream::Stdout, &[b'b'; 10_000]);
            log.finish();
        }
        assert!(d.total_bytes() <= 100_000, "{}", d.total_bytes());
        for id in 0..3u64 {
            let page = d.read(id, Target::Any, 0, 1 << 20).unwrap();
            assert_eq!(page.lines.len(), 1, "A's log {id} was deleted");
        }
        let gone = d.read(100, Target::Any, 0, 1 << 20).unwrap();
        assert!(gone.lines.is_empty() && gone.skipped > 0, "{gone:?}");
        let kept = d.read(149, Target::Any, 0, 1 << 20).unwrap();
        assert_eq!(kept.lines.len(), 1);
        // Once B holds less than A, A's oldest go too.
        for id in 3..10u64 {
            let mut log = d.task(id, &a);
            log.write(Stream::Stdout, &[b'a'; 10_000]);
            log.finish();
        }
        assert!(d.total_bytes() <= 100_000, "{}", d.total_bytes());
        let first = d.read(0, Target::Any, 0, 1 << 20).unwrap();
        assert!(first.lines.is_empty(), "{first:?}");
    }

    #[test]
    fn the_call_index_forgets_the_oldest_of_the_tenant_with_the_most() {
        let (_tmp, d) = dir(LogLimits::default());
        let (a, b) = (TenantId::new("a"), TenantId::new("b"));
        // A's silent task: only the index knows it (no stream stays).
        d.task(1, &a).finish();
        for id in 10..(10 + INDEX_CALLS as u64 + 5) {
            d.task(id, &b).finish();
        }
        assert_eq!(d.owner(1, Target::Call), Some(LogOwner::Task(1)));
        assert_eq!(d.owner(10, Target::Call), None, "B's oldest goes first");
        let last = 10 + INDEX_CALLS as u64 + 4;
        assert_eq!(d.owner(last, Target::Call), Some(LogOwner::Task(last)));
        assert_eq!(d.inner.lock().unwrap().calls.len(), INDEX_CALLS);
    }

    #[test]
    fn a_tenant_over_its_cap_loses_its_own_oldest_logs_only() {
        let (_tmp, d) = dir(LogLimits {
            call_bytes: 1 << 20,
            node_bytes: 10 << 20,
        });
        let (a, b) = (TenantId::new("a"), TenantId::new("b"));
        let capped = b.clone();
        d.cap_tenants(Box::new(move |t| (*t == capped).then_some(50_000)));
        // A's logs come first: the oldest of the directory.
        for id in 0..5u64 {
            let mut log = d.task(id, &a);
            log.write(Stream::Stdout, &[b'a'; 10_000]);
            log.finish();
        }
        for id in 100..120u64 {
            let mut log = d.task(id, &b);
            log.write(Stream::Stdout, &[b'b'; 10_000]);
            log.finish();
        }
        assert!(d.tenant_bytes(&b) <= 50_000, "{}", d.tenant_bytes(&b));
        let gone = d.read(100, Target::Any, 0, 1 << 20).unwrap();
        assert!(gone.lines.is_empty() && gone.skipped > 0, "{gone:?}");
        let kept = d.read(119, Target::Any, 0, 1 << 20).unwrap();
        assert_eq!(kept.lines.len(), 1);
        // Every one of A's logs is still there.
        for id in 0..5u64 {
            let page = d.read(id, Target::Any, 0, 1 << 20).unwrap();
            assert_eq!(page.lines.len(), 1, "A's log {id} was deleted");
        }
        assert!(d.tenant_bytes(&a) > 50_000);
    }

    #[test]
    fn actor_calls_are_read_alone_or_together_in_pages() {
        let (_tmp, d) = dir(LogLimits::default());
        let init = d.actor_init(1, &TenantId::default());
        drop(init);
        for call in 10..13u64 {
            let mut log = d.actor_call(1, &TenantId::default(), call);
            log.write(Stream::Log, format!("in {call}").as_bytes());
            log.finish();
        }
        let one = d.read(11, Target::Call, 0, 0).unwrap();
        let texts: Vec<_> = one.lines.iter().map(|l| l.1.as_str()).collect();
        assert_eq!(texts, vec!["in 11"]);
        assert!(one.finished);
        let all = d.read(1, Target::Actor, 0, 0).unwrap();
        assert_eq!(all.lines.len(), 3);
        assert!(!all.finished, "the actor lives on");
        d.actor_ended(1);
        let again = d.read(1, Target::Actor, all.next_offset, 0).unwrap();
        assert!(again.lines.is_empty() && again.finished);
    }
}
