//! Networked [`Storage`] on a Redis server, so that a new head process (on
//! any machine) can take over the control plane of a head that died.
//!
//! Layout, per table `T` under the key prefix `reef:`:
//! * `reef:T:v`, a hash: key → value;
//! * `reef:T:k`, a sorted set of the keys, all with score 0, so Redis keeps
//!   them in byte order and `ZRANGEBYLEX` answers prefix scans.
//!
//! Every write is one `MULTI`/`EXEC` transaction touching both, so the two
//! never disagree and [`Storage::write_batch`] is atomic. Scans read the key
//! range, then the values (`HMGET`); a key removed between the two is
//! skipped. Durability is the server's (`appendonly yes` for every write to
//! survive a Redis crash). Connections are synchronous: the control plane
//! calls its storage from blocking threads, never on its async runtime.
//!
//! The URL is `redis://[[USER]:PASSWORD@]HOST:PORT[/DB]`: a password (and
//! an ACL user) authenticates with `AUTH`, the database number selects a
//! database, so clusters can share a server.

use std::sync::Mutex;
use std::time::Duration;

use redis::{Client, Connection, RedisError};

use crate::error::{GcsError, Result};
use crate::storage::{Entry, Storage, WriteOp};

/// Prefix of every key this store writes.
const KEY_PREFIX: &str = "reef:";
/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one command may take.
const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// Idle connections kept for reuse.
const MAX_IDLE: usize = 8;

/// A [`Storage`] kept in a Redis server.
pub struct RedisStore {
    client: Client,
    /// `HOST:PORT/DB`, without credentials (for logs and errors).
    target: String,
    idle: Mutex<Vec<Connection>>,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("target", &self.target)
            .finish()
    }
}

fn redis_err(target: &str, err: RedisError) -> GcsError {
    GcsError::storage(format!("redis at {target}: {err}"))
}

impl RedisStore {
    /// Connects to the server at `url` (`redis://...`) and checks that it
    /// answers (a wrong password or an unreachable server fails here).
    pub fn open(url: &str) -> Result<Self> {
        let client = Client::open(url)
            .map_err(|e| GcsError::InvalidArgument(format!("redis URL `{url}`: {e}")))?;
        let info = client.get_connection_info();
        let target = format!("{}/{}", info.addr(), info.redis_settings().db());
        let store = Self {
            client,
            target,
            idle: Mutex::new(Vec::new()),
        };
        store.with_conn(|c| redis::cmd("PING").query::<String>(c))?;
        tracing::debug!(target = %store.target, "opened GCS redis store");
        Ok(store)
    }

    /// The server and database, without credentials.
    pub fn target(&self) -> &str {
        &self.target
    }

    fn connect(&self) -> std::result::Result<Connection, RedisError> {
        let conn = self.client.get_connection_with_timeout(CONNECT_TIMEOUT)?;
        conn.set_read_timeout(Some(IO_TIMEOUT))?;
        conn.set_write_timeout(Some(IO_TIMEOUT))?;
        Ok(conn)
    }

    /// Runs `f` on a pooled connection. A connection that broke (the server
    /// restarted, a timeout) is dropped and `f` runs once more on a fresh
    /// one; every operation here is idempotent, so that is safe.
    fn with_conn<T>(
        &self,
        f: impl Fn(&mut Connection) -> std::result::Result<T, RedisError>,
    ) -> Result<T> {
        let pooled = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let mut conn = match pooled {
            Some(conn) => conn,
            None => self.connect().map_err(|e| redis_err(&self.target, e))?,
        };
        let out = match f(&mut conn) {
            Err(e) if e.is_io_error() || e.is_connection_dropped() || e.is_timeout() => {
                tracing::debug!(target = %self.target, error = %e, "redis connection broke: reconnecting");
                conn = self.connect().map_err(|e| redis_err(&self.target, e))?;
                f(&mut conn)
            }
            other => other,
        };
        let value = out.map_err(|e| redis_err(&self.target, e))?;
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < MAX_IDLE {
            idle.push(conn);
        }
        Ok(value)
    }
}

fn values_key(table: &str) -> String {
    format!("{KEY_PREFIX}{table}:v")
}

fn keys_key(table: &str) -> String {
    format!("{KEY_PREFIX}{table}:k")
}

/// The `ZRANGEBYLEX` bounds of every key starting with `prefix`.
fn lex_range(prefix: &[u8]) -> (Vec<u8>, Vec<u8>) {
    if prefix.is_empty() {
        return (b"-".to_vec(), b"+".to_vec());
    }
    let mut min = b"[".to_vec();
    min.extend_from_slice(prefix);
    // The first key past the prefix: drop trailing 0xff bytes, add one to
    // the last remaining byte (no such byte: the range is open ended).
    let mut end = prefix.to_vec();
    while end.last() == Some(&0xff) {
        end.pop();
    }
    let max = match end.last_mut() {
        Some(last) => {
            *last += 1;
            let mut max = b"(".to_vec();
            max.extend_from_slice(&end);
            max
        }
        None => b"+".to_vec(),
    };
    (min, max)
}

impl Storage for RedisStore {
    fn get(&self, table: &str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let hash = values_key(table);
        self.with_conn(|c| redis::cmd("HGET").arg(&hash).arg(key).query(c))
    }

    fn put(&self, table: &str, key: &[u8], value: &[u8]) -> Result<()> {
        self.write_batch(&[WriteOp::Put { table, key, value }])
    }

    fn delete(&self, table: &str, key: &[u8]) -> Result<bool> {
        let (hash, keys) = (values_key(table), keys_key(table));
        let (removed, _): (i64, i64) = self.with_conn(|c| {
            redis::pipe()
                .atomic()
                .cmd("HDEL")
                .arg(&hash)
                .arg(key)
                .cmd("ZREM")
                .arg(&keys)
                .arg(key)
                .query(c)
        })?;
        Ok(removed > 0)
    }

    fn scan_prefix(&self, table: &str, prefix: &[u8]) -> Result<Vec<Entry>> {
        let (hash, keys_set) = (values_key(table), keys_key(table));
        let (min, max) = lex_range(prefix);
        let keys: Vec<Vec<u8>> = self.with_conn(|c| {
            redis::cmd("ZRANGEBYLEX")
                .arg(&keys_set)
                .arg(&min)
                .arg(&max)
                .query(c)
        })?;
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let values: Vec<Option<Vec<u8>>> =
            self.with_conn(|c| redis::cmd("HMGET").arg(&hash).arg(&keys).query(c))?;
        Ok(keys
            .into_iter()
            .zip(values)
            .filter_map(|(k, v)| v.map(|v| (k, v)))
            .collect())
    }

    fn write_batch(&self, ops: &[WriteOp<'_>]) -> Result<()> {
        if ops.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        pipe.atomic();
        for op in ops {
            match *op {
                WriteOp::Put { table, key, value } => {
                    pipe.cmd("HSET")
                        .arg(values_key(table))
                        .arg(key)
                        .arg(value)
                        .ignore()
                        .cmd("ZADD")
                        .arg(keys_key(table))
                        .arg(0)
                        .arg(key)
                        .ignore();
                }
                WriteOp::Delete { table, key } => {
                    pipe.cmd("HDEL")
                        .arg(values_key(table))
                        .arg(key)
                        .ignore()
                        .cmd("ZREM")
                        .arg(keys_key(table))
                        .arg(key)
                        .ignore();
                }
            }
        }
        self.with_conn(|c| pipe.exec(c))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::RedisServer;

    #[test]
    fn lex_ranges() {
        assert_eq!(lex_range(b""), (b"-".to_vec(), b"+".to_vec()));
        assert_eq!(lex_range(b"ab"), (b"[ab".to_vec(), b"(ac".to_vec()));
        assert_eq!(lex_range(b"a\xff"), (b"[a\xff".to_vec(), b"(b".to_vec()));
        assert_eq!(
            lex_range(b"\xff\xff"),
            (b"[\xff\xff".to_vec(), b"+".to_vec())
        );
    }

    #[test]
    fn conformance() {
        let server = RedisServer::start(None);
        crate::storage::conformance::check(&RedisStore::open(&server.url).unwrap());
    }

    #[test]
    fn a_second_store_sees_the_writes_and_a_password_is_needed() {
        let server = RedisServer::start(Some("s3cret"));
        let first = RedisStore::open(&server.url).unwrap();
        first.put("t", b"k", b"v").unwrap();
        let second = RedisStore::open(&server.url).unwrap();
        assert_eq!(second.get("t", b"k").unwrap().as_deref(), Some(&b"v"[..]));
        assert!(!second.target().contains("s3cret"));
        let without = server.url.replace(":s3cret@", "");
        assert!(matches!(
            RedisStore::open(&without),
            Err(GcsError::Storage(_))
        ));
    }

    #[test]
    fn a_bad_url_is_refused() {
        assert!(matches!(
            RedisStore::open("http://nowhere"),
            Err(GcsError::InvalidArgument(_))
        ));
    }
}
