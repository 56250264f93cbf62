//! Errors on the wire: every status the control plane returns carries the
//! Reef error (`reef.v1.Error`) in its details, so a caller gets the code
//! back with `ReefError::from(status)`; the message repeats it for logs
//! (`"UNKNOWN_NODE: node abc is not in the cluster"`).

use reef_core::ReefError;
use reef_proto::ErrorCode;
use tonic::{Code, Status};

use crate::error::GcsError;

/// A status with gRPC code `grpc` carrying the Reef error `code: message`.
pub fn reef_status(grpc: Code, code: ErrorCode, message: impl std::fmt::Display) -> Status {
    ReefError::new(code, message.to_string()).to_status(grpc)
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
                    "actor" | "actor name" => ErrorCode::UnknownActor,
                    "module" => ErrorCode::UnknownModule,
                    "placement group" => ErrorCode::UnknownPlacementGroup,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn reef(s: &Status) -> (ErrorCode, String) {
        let e = ReefError::from_status(s);
        (e.code, e.message)
    }

    #[test]
    fn codes_travel_in_the_details() {
        let s = unknown_node("abc");
        assert_eq!(s.code(), Code::InvalidArgument);
        assert_eq!(s.message(), "UNKNOWN_NODE: node abc is not in the cluster");
        assert_eq!(
            reef(&s),
            (
                ErrorCode::UnknownNode,
                "node abc is not in the cluster".into()
            )
        );
        let s: Status = GcsError::not_found("actor", 3).into();
        assert_eq!(s.code(), Code::NotFound);
        assert_eq!(reef(&s).0, ErrorCode::UnknownActor);
        let s: Status = GcsError::not_found("job", 7).into();
        assert_eq!(reef(&s).0, ErrorCode::BadArgument);
        let s: Status = GcsError::not_found("placement group", 7).into();
        assert_eq!(s.code(), Code::NotFound);
        assert_eq!(reef(&s).0, ErrorCode::UnknownPlacementGroup);
    }
}
