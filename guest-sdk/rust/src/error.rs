//! The SDK's error type: a message that becomes the `err` string of a task or call.

use std::fmt;

/// An error with a human-readable message.
///
/// Returning `Err(e)` from a task or actor method fails it with `e`'s message.
#[derive(Clone, PartialEq, Eq)]
pub struct Error {
    message: String,
}

/// `Result` with [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Creates an error from a message.
    pub fn new(message: impl Into<String>) -> Error {
        Error {
            message: message.into(),
        }
    }

    /// The error's message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Consumes the error and returns its message.
    pub fn into_message(self) -> String {
        self.message
    }

    /// Prefixes the message with `context` (`"context: message"`).
    pub fn context(self, context: impl fmt::Display) -> Error {
        Error::new(format!("{}: {}", context, self.message))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Error({:?})", self.message)
    }
}

impl std::error::Error for Error {}

impl From<&str> for Error {
    fn from(message: &str) -> Error {
        Error::new(message)
    }
}

impl From<String> for Error {
    fn from(message: String) -> Error {
        Error::new(message)
    }
}

impl From<fmt::Error> for Error {
    fn from(_: fmt::Error) -> Error {
        Error::new("formatting failed")
    }
}

impl From<std::str::Utf8Error> for Error {
    fn from(e: std::str::Utf8Error) -> Error {
        Error::new(format!("invalid UTF-8: {}", e))
    }
}

impl From<std::string::FromUtf8Error> for Error {
    fn from(e: std::string::FromUtf8Error) -> Error {
        Error::new(format!("invalid UTF-8: {}", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_and_conversions() {
        let e: Error = "boom".into();
        assert_eq!(e.to_string(), "boom");
        let e: Error = String::from("bad").into();
        assert_eq!(e.message(), "bad");
        assert_eq!(e.context("argument 0").to_string(), "argument 0: bad");
    }
}
