//! Errors the driver returns: a node's typed error, or a transport problem.

use std::fmt;

pub use reef_proto::ErrorCode;

#[derive(Debug, Clone)]
pub struct Error {
    pub code: ErrorCode,
    pub message: String,
    /// The guest's backtrace, when a guest failed.
    pub backtrace: String,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Error {
            code,
            message: message.into(),
            backtrace: String::new(),
        }
    }
    pub(crate) fn from_proto(e: reef_proto::Error) -> Self {
        Error {
            code: ErrorCode::try_from(e.code).unwrap_or(ErrorCode::Internal),
            message: e.message,
            backtrace: e.backtrace,
        }
    }
    pub(crate) fn disconnected() -> Self {
        Error::new(ErrorCode::Internal, "the connection to the node was lost")
    }
    pub(crate) fn decode(e: impl fmt::Display) -> Self {
        Error::new(
            ErrorCode::BadArgument,
            format!("cannot decode the value: {e}"),
        )
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str_name(), self.message)?;
        if !self.backtrace.is_empty() {
            write!(f, "\nguest backtrace:\n{}", self.backtrace)?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

impl From<tonic::Status> for Error {
    fn from(s: tonic::Status) -> Self {
        // Node and control-plane errors start with the Reef code's name.
        if let Some((name, rest)) = s.message().split_once(':') {
            if let Some(code) = ErrorCode::from_str_name(name.trim()) {
                return Error::new(code, rest.trim());
            }
        }
        let code = match s.code() {
            tonic::Code::Unauthenticated => ErrorCode::Unauthenticated,
            _ => ErrorCode::Internal,
        };
        Error::new(code, format!("rpc failed: {}", s.message()))
    }
}

impl From<tonic::transport::Error> for Error {
    fn from(e: tonic::transport::Error) -> Self {
        Error::new(ErrorCode::Internal, format!("cannot connect: {e}"))
    }
}
