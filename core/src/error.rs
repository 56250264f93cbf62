//! The typed error every failed operation carries: in the host, the control
//! plane and the driver, in the session's replies (`reef.v1.Error`) and in
//! the status of a failed gRPC call, whose details are the encoded
//! `reef.v1.Error` (so the receiver gets the code back without reading the
//! message).

use std::fmt;

use bytes::Bytes;
use prost::Message;
use reef_proto as pb;
use tonic::{Code, Status};

pub use reef_proto::ErrorCode;

/// An error with a code a caller can match on, a message naming the cause
/// and, for guest failures, the guest's backtrace.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{}: {}{}", .code.as_str_name(), .message, GuestBacktrace(.backtrace))]
pub struct ReefError {
    pub code: ErrorCode,
    pub message: String,
    /// The guest's backtrace (wasm frames or the guest language's
    /// traceback) when a guest failed; empty otherwise.
    pub backtrace: String,
}

pub type ReefResult<T, E = ReefError> = Result<T, E>;

struct GuestBacktrace<'a>(&'a String);

impl fmt::Display for GuestBacktrace<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            Ok(())
        } else {
            write!(f, "\nguest backtrace:\n{}", self.0)
        }
    }
}

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

    /// The same error with `context: ` before its message.
    pub fn context(mut self, context: impl fmt::Display) -> Self {
        self.message = format!("{context}: {}", self.message);
        self
    }

    pub fn to_proto(&self) -> pb::Error {
        pb::Error {
            code: self.code as i32,
            message: self.message.clone(),
            backtrace: self.backtrace.clone(),
        }
    }

    /// A received `reef.v1.Error` (an unknown code is `INTERNAL`, its number
    /// kept in the message).
    pub fn from_proto(e: pb::Error) -> Self {
        match ErrorCode::try_from(e.code) {
            Ok(code) => ReefError {
                code,
                message: e.message,
                backtrace: e.backtrace,
            },
            Err(_) => ReefError {
                code: ErrorCode::Internal,
                message: format!("{} (error code {})", e.message, e.code),
                backtrace: e.backtrace,
            },
        }
    }

    /// The gRPC status carrying this error, with the gRPC code `grpc` (for
    /// callers that are not Reef clients); see [`grpc_code`] for the usual one.
    pub fn to_status(&self, grpc: Code) -> Status {
        let details = Bytes::from(self.to_proto().encode_to_vec());
        // The message repeats code and text for logs and generic clients.
        Status::with_details(
            grpc,
            format!("{}: {}", self.code.as_str_name(), self.message),
            details,
        )
    }

    /// The error a failed gRPC call carried: the `reef.v1.Error` in its
    /// details when there is one, else one derived from the gRPC code
    /// (`Unauthenticated` → `UNAUTHENTICATED`, `PermissionDenied` →
    /// `PERMISSION_DENIED`, `DeadlineExceeded` →
    /// `TIMEOUT`, `Cancelled` → `CANCELLED`, anything else `INTERNAL` with
    /// the gRPC code in the message).
    pub fn from_status(status: &Status) -> Self {
        if !status.details().is_empty() {
            if let Ok(e) = pb::Error::decode(status.details()) {
                return Self::from_proto(e);
            }
        }
        let message = status.message();
        match status.code() {
            Code::Unauthenticated => Self::new(ErrorCode::Unauthenticated, message),
            Code::PermissionDenied => Self::new(ErrorCode::PermissionDenied, message),
            Code::DeadlineExceeded => Self::new(ErrorCode::Timeout, message),
            Code::Cancelled => Self::new(ErrorCode::Cancelled, message),
            other => Self::new(
                ErrorCode::Internal,
                format!("rpc failed: {}: {message}", other.description()),
            ),
        }
    }
}

/// The gRPC code a status carrying `code` has by default.
pub fn grpc_code(code: ErrorCode) -> Code {
    use ErrorCode as E;
    match code {
        E::BadArgument | E::InvalidModule | E::ViewError => Code::InvalidArgument,
        E::UnknownModule
        | E::UnknownFunction
        | E::UnknownObject
        | E::UnknownActor
        | E::UnknownNode
        | E::UnknownPlacementGroup => Code::NotFound,
        E::NameTaken => Code::AlreadyExists,
        E::Unauthenticated => Code::Unauthenticated,
        E::NotGranted | E::PermissionDenied => Code::PermissionDenied,
        E::Timeout => Code::DeadlineExceeded,
        E::Cancelled => Code::Cancelled,
        E::StoreFull | E::MemoryLimit | E::CpuTimeLimit | E::StackOverflow | E::QuotaExceeded => {
            Code::ResourceExhausted
        }
        E::Infeasible
        | E::DependencyFailed
        | E::ActorDead
        | E::OwnerDied
        | E::NodeDied
        | E::ObjectLost
        | E::PlacementGroupRemoved => Code::FailedPrecondition,
        E::NodeStopping | E::ActorRestarting => Code::Unavailable,
        E::GuestTrap | E::GuestPanic | E::GuestError => Code::Aborted,
        E::Internal | E::Unspecified => Code::Internal,
    }
}

impl From<pb::Error> for ReefError {
    fn from(e: pb::Error) -> Self {
        Self::from_proto(e)
    }
}

impl From<&ReefError> for pb::Error {
    fn from(e: &ReefError) -> Self {
        e.to_proto()
    }
}

impl From<ReefError> for pb::Error {
    fn from(e: ReefError) -> Self {
        pb::Error {
            code: e.code as i32,
            message: e.message,
            backtrace: e.backtrace,
        }
    }
}

impl From<ReefError> for Status {
    fn from(e: ReefError) -> Self {
        e.to_status(grpc_code(e.code))
    }
}

impl From<Status> for ReefError {
    fn from(s: Status) -> Self {
        Self::from_status(&s)
    }
}

impl From<tonic::transport::Error> for ReefError {
    fn from(e: tonic::transport::Error) -> Self {
        // The transport error's own text is generic; its source names the cause.
        let cause = std::error::Error::source(&e).map_or(String::new(), |s| format!(" ({s})"));
        ReefError::new(ErrorCode::Internal, format!("cannot connect: {e}{cause}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_round_trip_keeps_code_message_and_backtrace() {
        let e = ReefError::new(
            ErrorCode::UnknownPlacementGroup,
            "group 7: no such group: really",
        )
        .with_backtrace("frame 0\nframe 1");
        let status = Status::from(e.clone());
        assert_eq!(status.code(), Code::NotFound);
        assert_eq!(
            status.message(),
            "UNKNOWN_PLACEMENT_GROUP: group 7: no such group: really"
        );
        assert_eq!(ReefError::from(status), e);
        // An explicit gRPC code does not change what the receiver sees.
        let status = e.to_status(Code::FailedPrecondition);
        assert_eq!(status.code(), Code::FailedPrecondition);
        assert_eq!(ReefError::from_status(&status), e);
    }

    #[test]
    fn the_code_comes_from_the_details_not_the_message() {
        // A message that looks like another code does not fool the receiver.
        let e = ReefError::new(ErrorCode::GuestError, "NAME_TAKEN: said the guest");
        assert_eq!(ReefError::from(Status::from(e.clone())), e);
        // Details survive the trip through HTTP/2 headers.
        let mut headers = tonic::codegen::http::HeaderMap::new();
        Status::from(e.clone()).add_header(&mut headers).unwrap();
        let back = Status::from_header_map(&headers).unwrap();
        assert_eq!(ReefError::from(back), e);
    }

    #[test]
    fn statuses_without_details_map_by_grpc_code() {
        let e = ReefError::from(Status::unauthenticated("wrong cluster token"));
        assert_eq!(e.code, ErrorCode::Unauthenticated);
        assert_eq!(e.message, "wrong cluster token");
        let e = ReefError::from(Status::unavailable("connection refused"));
        assert_eq!(e.code, ErrorCode::Internal);
        assert!(
            e.message.contains("unavailable") && e.message.contains("refused"),
            "{e}"
        );
        assert_eq!(
            ReefError::from(Status::deadline_exceeded("slow")).code,
            ErrorCode::Timeout
        );
        // A "CODE: message" text alone is not parsed.
        let e = ReefError::from(Status::not_found("UNKNOWN_ACTOR: 5"));
        assert_eq!(e.code, ErrorCode::Internal);
        // Details that are not a Reef error are ignored.
        let s = Status::with_details(Code::Cancelled, "gone", Bytes::from_static(&[0xff, 0xff]));
        assert_eq!(ReefError::from(s).code, ErrorCode::Cancelled);
    }

    #[test]
    fn proto_round_trip_and_unknown_codes() {
        let e = ReefError::new(ErrorCode::ActorDead, "actor 3 died").with_backtrace("bt");
        assert_eq!(ReefError::from(e.to_proto()), e);
        assert_eq!(ReefError::from(pb::Error::from(e.clone())), e);
        let future = pb::Error {
            code: 999,
            message: "new".into(),
            backtrace: String::new(),
        };
        let e = ReefError::from(future);
        assert_eq!(e.code, ErrorCode::Internal);
        assert!(e.message.contains("999"), "{e}");
    }

    #[test]
    fn display_names_the_code_and_the_guest_backtrace() {
        let e = ReefError::new(ErrorCode::GuestPanic, "boom");
        assert_eq!(e.to_string(), "GUEST_PANIC: boom");
        let e = e.with_backtrace("at f");
        assert_eq!(e.to_string(), "GUEST_PANIC: boom\nguest backtrace:\nat f");
        assert_eq!(
            ReefError::new(ErrorCode::Internal, "x")
                .context("locating")
                .message,
            "locating: x"
        );
    }
}
