//! The typed error every failed operation carries to the driver.

use std::fmt;

pub use reef_proto::ErrorCode;

/// An error with a code a driver can match on, a message naming the cause and,
/// for guest failures, the guest's backtrace.
#[derive(Clone, Debug)]
pub struct ReefError {
    pub code: ErrorCode,
    pub message: String,
    pub backtrace: String,
}

pub type ReefResult<T> = Result<T, ReefError>;

impl ReefError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ReefError {
            code,
            message: message.into(),
            backtrace: String::new(),
        }
    }
    pub fn with_backtrace(mut self, backtrace: impl Into<String>) -> Self {
        self.backtrace = backtrace.into();
        self
    }
    pub fn unknown_object(id: u64) -> Self {
        Self::new(
            ErrorCode::UnknownObject,
            format!("object {id:#x} does not exist or was already freed"),
        )
    }
    pub fn internal(err: impl fmt::Display) -> Self {
        Self::new(ErrorCode::Internal, format!("{err:#}"))
    }
    pub fn to_proto(&self) -> reef_proto::Error {
        reef_proto::Error {
            code: self.code as i32,
            message: self.message.clone(),
            backtrace: self.backtrace.clone(),
        }
    }
}

impl fmt::Display for ReefError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str_name(), self.message)
    }
}

impl std::error::Error for ReefError {}
