//! The crate's error type.

use std::error::Error as StdError;

/// Result alias used throughout the crate.
pub type Result<T, E = GcsError> = std::result::Result<T, E>;

/// Everything a control-plane operation can fail with.
///
/// The variants are coarse on purpose so the service can map them onto
/// status codes one to one (`Storage` -> unavailable, `NotFound` -> not
/// found, `InvalidArgument` -> invalid argument, `Corrupt` -> data loss).
#[derive(Debug, thiserror::Error)]
pub enum GcsError {
    /// The storage backend failed (I/O, database, network).
    #[error("storage backend error: {0}")]
    Storage(#[source] Box<dyn StdError + Send + Sync + 'static>),

    /// A record the operation needs does not exist.
    #[error("{what} `{key}` not found")]
    NotFound { what: &'static str, key: String },

    /// The caller passed a value the control plane refuses to store.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// A stored value could not be (de)serialized.
    #[error("corrupt record in table `{table}` at key `{key}`: {source}")]
    Corrupt {
        table: &'static str,
        key: String,
        #[source]
        source: serde_json::Error,
    },
}

impl GcsError {
    /// Wraps any backend error as [`GcsError::Storage`].
    pub fn storage(err: impl Into<Box<dyn StdError + Send + Sync + 'static>>) -> Self {
        GcsError::Storage(err.into())
    }

    /// Shorthand for [`GcsError::NotFound`].
    pub fn not_found(what: &'static str, key: impl ToString) -> Self {
        GcsError::NotFound {
            what,
            key: key.to_string(),
        }
    }
}
