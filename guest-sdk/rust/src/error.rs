//! The SDK's error type: a code and a message, the `failure` a task or call returns.

use std::fmt;

/// An error code: the WIT `code` enum of `reef:runtime`, which is the driver API's
/// `ErrorCode` (same names, same order). Most guests raise [`Code::BadArgument`] or
/// leave the default [`Code::GuestError`]; host functions fail with any of them (reading
/// the result of a failed task gives that task's code).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Code {
    /// `INVALID_MODULE`
    InvalidModule,
    /// `UNKNOWN_MODULE`
    UnknownModule,
    /// `UNKNOWN_FUNCTION`
    UnknownFunction,
    /// `BAD_ARGUMENT`
    BadArgument,
    /// `UNKNOWN_OBJECT`
    UnknownObject,
    /// `GUEST_TRAP`
    GuestTrap,
    /// `GUEST_PANIC`
    GuestPanic,
    /// `GUEST_ERROR`
    GuestError,
    /// `MEMORY_LIMIT`
    MemoryLimit,
    /// `CPU_TIME_LIMIT`
    CpuTimeLimit,
    /// `STACK_OVERFLOW`
    StackOverflow,
    /// `CANCELLED`
    Cancelled,
    /// `TIMEOUT`
    Timeout,
    /// `STORE_FULL`
    StoreFull,
    /// `INFEASIBLE`
    Infeasible,
    /// `DEPENDENCY_FAILED`
    DependencyFailed,
    /// `UNKNOWN_ACTOR`
    UnknownActor,
    /// `ACTOR_DEAD`
    ActorDead,
    /// `NAME_TAKEN`
    NameTaken,
    /// `NODE_STOPPING`
    NodeStopping,
    /// `OWNER_DIED`
    OwnerDied,
    /// `VIEW_ERROR`
    ViewError,
    /// `INTERNAL`
    Internal,
    /// `UNAUTHENTICATED`
    Unauthenticated,
    /// `NODE_DIED`
    NodeDied,
    /// `UNKNOWN_NODE`
    UnknownNode,
    /// `UNKNOWN_PLACEMENT_GROUP`
    UnknownPlacementGroup,
    /// `OBJECT_LOST`
    ObjectLost,
    /// `NOT_GRANTED`
    NotGranted,
    /// `PLACEMENT_GROUP_REMOVED`
    PlacementGroupRemoved,
}

/// Every code with its WIT name, in the order of its discriminant.
pub(crate) const CODES: [(&str, Code); 30] = [
    ("invalid-module", Code::InvalidModule),
    ("unknown-module", Code::UnknownModule),
    ("unknown-function", Code::UnknownFunction),
    ("bad-argument", Code::BadArgument),
    ("unknown-object", Code::UnknownObject),
    ("guest-trap", Code::GuestTrap),
    ("guest-panic", Code::GuestPanic),
    ("guest-error", Code::GuestError),
    ("memory-limit", Code::MemoryLimit),
    ("cpu-time-limit", Code::CpuTimeLimit),
    ("stack-overflow", Code::StackOverflow),
    ("cancelled", Code::Cancelled),
    ("timeout", Code::Timeout),
    ("store-full", Code::StoreFull),
    ("infeasible", Code::Infeasible),
    ("dependency-failed", Code::DependencyFailed),
    ("unknown-actor", Code::UnknownActor),
    ("actor-dead", Code::ActorDead),
    ("name-taken", Code::NameTaken),
    ("node-stopping", Code::NodeStopping),
    ("owner-died", Code::OwnerDied),
    ("view-error", Code::ViewError),
    ("internal", Code::Internal),
    ("unauthenticated", Code::Unauthenticated),
    ("node-died", Code::NodeDied),
    ("unknown-node", Code::UnknownNode),
    ("unknown-placement-group", Code::UnknownPlacementGroup),
    ("object-lost", Code::ObjectLost),
    ("not-granted", Code::NotGranted),
    ("placement-group-removed", Code::PlacementGroupRemoved),
];

impl Code {
    /// The code with canonical-ABI discriminant `disc`, if there is one.
    pub fn from_discriminant(disc: u8) -> Option<Code> {
        CODES.get(disc as usize).map(|&(_, code)| code)
    }

    /// The driver's name of the code, e.g. `"BAD_ARGUMENT"`.
    pub fn name(self) -> String {
        self.wit_name().to_uppercase().replace('-', "_")
    }

    /// The WIT name of the code, e.g. `"bad-argument"`.
    pub fn wit_name(self) -> &'static str {
        CODES[self as usize].0
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

/// An error: a [`Code`] the driver can match on and a human-readable message.
///
/// Returning `Err(e)` from a task or actor method fails it with `e`'s code and message.
/// A plain message (`Error::new`, `"...".into()`) has the code [`Code::GuestError`];
/// `Error::with_code(Code::BadArgument, "...")` raises another.
#[derive(Clone, PartialEq, Eq)]
pub struct Error {
    code: Code,
    message: String,
}

/// `Result` with [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A guest error (code [`Code::GuestError`]) with `message`.
    pub fn new(message: impl Into<String>) -> Error {
        Error::with_code(Code::GuestError, message)
    }

    /// An error with `code` and `message`.
    pub fn with_code(code: Code, message: impl Into<String>) -> Error {
        Error {
            code,
            message: message.into(),
        }
    }

    /// The error's code.
    pub fn code(&self) -> Code {
        self.code
    }

    /// The error's message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Consumes the error and returns its message.
    pub fn into_message(self) -> String {
        self.message
    }

    /// Prefixes the message with `context` (`"context: message"`); the code stays.
    pub fn context(self, context: impl fmt::Display) -> Error {
        Error::with_code(self.code, format!("{}: {}", context, self.message))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Error({}, {:?})", self.code, self.message)
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
        assert_eq!(e.code(), Code::GuestError);
        let e = Error::with_code(Code::BadArgument, "bad").context("argument 0");
        assert_eq!(
            (e.code(), e.message()),
            (Code::BadArgument, "argument 0: bad")
        );
        assert_eq!(
            format!("{:?}", e),
            "Error(BAD_ARGUMENT, \"argument 0: bad\")"
        );
    }

    #[test]
    fn discriminants_follow_the_table() {
        for (i, &(name, code)) in CODES.iter().enumerate() {
            assert_eq!(code as usize, i, "{}", name);
            assert_eq!(Code::from_discriminant(i as u8), Some(code));
            assert_eq!(code.wit_name(), name);
        }
        assert_eq!(Code::from_discriminant(CODES.len() as u8), None);
        assert_eq!(Code::NodeStopping.name(), "NODE_STOPPING");
    }
}
