//! Errors on the wire: every status the control plane returns has a message
//! that starts with a Reef [`ErrorCode`] name (`"UNKNOWN_NODE: node abc is
//! not in the cluster"`), so a caller maps it back with [`status_to_reef`].

use reef_proto::ErrorCode;
use tonic::{Code, Status};

use crate::error::GcsError;

/// A status whose message is `"<ERROR_CODE>: <message>"`.
pub fn reef_status(grpc: Code, code: ErrorCode, message: impl std::fmt::Display) -> Status {
    Status::new(grpc, format!("{}: {message}", code.as_str_name()))
}

pub(crate) fn bad_argument(message: impl std::fmt::Display) -> Status {
    reef_status(Code::InvalidArgument, ErrorCode::BadArgument, message)
}

pub(crate) fn unknown_node(node_id: &str) -> Status {
    reef_status(
        Code::InvalidArgument,
        ErrorCode::UnknownNode,
        format!("node {node_id} is not in the cluster"),
    )
}

pub(crate) fn infeasible(message: impl std::fmt::Display) -> Status {
    reef_status(Code::FailedPrecondition, ErrorCode::Infeasible, message)
}

pub(crate) fn internal(message: impl std::fmt::Display) -> Status {
    reef_status(Code::Internal, ErrorCode::Internal, message)
}

impl From<GcsError> for Status {
    fn from(err: GcsError) -> Self {
        let message = err.to_string();
        match &err {
            GcsError::NotFound { what, .. } => {
                let code = match *what {
                    "node" => ErrorCode::UnknownNode,
                    "actor" => ErrorCode::UnknownActor,
                    _ => ErrorCode::BadArgument,
                };
                reef_status(Code::NotFound, code, message)
            }
            GcsError::InvalidArgument(m) => bad_argument(m),
            GcsError::Storage(_) => reef_status(Code::Unavailable, ErrorCode::Internal, message),
            GcsError::Corrupt { .. } => reef_status(Code::DataLoss, ErrorCode::Internal, message),
        }
    }
}

/// The Reef error code and message of a status: the code named at the start
/// of the message when there is one (the prefix is removed from the
/// message), else one derived from the gRPC code (`Unauthenticated` →
/// `UNAUTHENTICATED`, `DeadlineExceeded` → `TIMEOUT`, `Cancelled` →
/// `CANCELLED`, anything else `INTERNAL` with the gRPC code in the message).
pub fn status_to_reef(status: &Status) -> (ErrorCode, String) {
    let message = status.message();
    if let Some((name, rest)) = message.split_once(':') {
        if let Some(code) = ErrorCode::from_str_name(name.trim()) {
            return (code, rest.trim_start().to_owned());
        }
    }
    let code = match status.code() {
        Code::Unauthenticated => ErrorCode::Unauthenticated,
        Code::DeadlineExceeded => ErrorCode::Timeout,
        Code::Cancelled => ErrorCode::Cancelled,
        _ => ErrorCode::Internal,
    };
    let message = if code == ErrorCode::Internal {
        format!("control plane: {:?}: {message}", status.code())
    } else {
        message.to_owned()
    };
    (code, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_through_the_message() {
        let s = unknown_node("abc");
        assert_eq!(s.code(), Code::InvalidArgument);
        assert_eq!(s.message(), "UNKNOWN_NODE: node abc is not in the cluster");
        assert_eq!(
            status_to_reef(&s),
            (
                ErrorCode::UnknownNode,
                "node abc is not in the cluster".into()
            )
        );
        let s: Status = GcsError::not_found("actor", 3).into();
        assert_eq!(s.code(), Code::NotFound);
        assert_eq!(status_to_reef(&s).0, ErrorCode::UnknownActor);
        let s: Status = GcsError::not_found("job", 7).into();
        assert_eq!(status_to_reef(&s).0, ErrorCode::BadArgument);
    }

    #[test]
    fn plain_statuses_map_by_grpc_code() {
        let (code, msg) = status_to_reef(&Status::unauthenticated("wrong cluster token"));
        assert_eq!(code, ErrorCode::Unauthenticated);
        assert_eq!(msg, "wrong cluster token");
        let (code, msg) = status_to_reef(&Status::unavailable("connection refused: x"));
        assert_eq!(code, ErrorCode::Internal);
        assert!(msg.contains("Unavailable"), "{msg}");
        assert_eq!(
            status_to_reef(&Status::deadline_exceeded("slow")).0,
            ErrorCode::Timeout
        );
    }
}
