//! Which [`Storage`] a head uses: `host start --head --gcs-storage SPEC`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::Result;
use crate::file_store::FileStore;
use crate::redis_store::RedisStore;
use crate::storage::Storage;

/// Where the control plane keeps its state.
#[derive(Clone, PartialEq, Eq)]
pub enum StorageSpec {
    /// The embedded file store, in the given directory or the default one
    /// (`file`).
    File(Option<PathBuf>),
    /// A Redis server: `redis://[[USER]:PASSWORD@]HOST:PORT[/DB]`.
    Redis(String),
}

impl std::str::FromStr for StorageSpec {
    type Err = String;

    /// `file`, a directory, or a `redis://` URL.
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "" => Err("empty control-plane storage: expected `file`, a directory or redis://HOST:PORT".into()),
            "file" => Ok(StorageSpec::File(None)),
            url if url.starts_with("redis://") => Ok(StorageSpec::Redis(url.to_owned())),
            other if other.contains("://") => Err(format!(
                "control-plane storage `{other}`: only `file`, a directory and redis://HOST:PORT are supported"
            )),
            dir => Ok(StorageSpec::File(Some(PathBuf::from(dir)))),
        }
    }
}

/// Never shows a Redis password.
impl std::fmt::Debug for StorageSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StorageSpec::File(None) => write!(f, "file"),
            StorageSpec::File(Some(dir)) => write!(f, "file in {}", dir.display()),
            StorageSpec::Redis(url) => match url.rsplit_once('@') {
                Some((_, host)) => write!(f, "redis://***@{host}"),
                None => write!(f, "{url}"),
            },
        }
    }
}

impl std::fmt::Display for StorageSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self, f)
    }
}

impl StorageSpec {
    /// Opens the store; `default_dir` is the file store's directory when
    /// none was given.
    pub fn open(&self, default_dir: &Path) -> Result<Arc<dyn Storage>> {
        Ok(match self {
            StorageSpec::File(dir) => {
                Arc::new(FileStore::open(dir.as_deref().unwrap_or(default_dir))?)
            }
            StorageSpec::Redis(url) => Arc::new(RedisStore::open(url)?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_hides_passwords() {
        let spec = |s: &str| s.parse::<StorageSpec>();
        assert_eq!(spec("file").unwrap(), StorageSpec::File(None));
        assert_eq!(
            spec("/var/lib/reef").unwrap(),
            StorageSpec::File(Some("/var/lib/reef".into()))
        );
        let redis = spec("redis://:pw@10.0.0.1:6379/2").unwrap();
        assert_eq!(
            redis,
            StorageSpec::Redis("redis://:pw@10.0.0.1:6379/2".into())
        );
        assert_eq!(redis.to_string(), "redis://***@10.0.0.1:6379/2");
        assert!(spec("").is_err());
        assert!(spec("s3://bucket").is_err());
    }

    #[test]
    fn opens_the_file_store_in_the_default_directory() {
        let dir = tempfile::tempdir().unwrap();
        let store = StorageSpec::File(None).open(dir.path()).unwrap();
        store.put("t", b"k", b"v").unwrap();
        assert!(dir.path().join(crate::DB_FILE).exists());
    }
}
