//! Errors the driver returns: a node's typed error, or a transport problem
//! (`reef_core::ReefError`, the one error type of every Reef crate).

pub use reef_core::{ErrorCode, ReefError as Error};

pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) fn disconnected() -> Error {
    Error::new(ErrorCode::Internal, "the connection to the node was lost")
}

pub(crate) fn decode(e: impl std::fmt::Display) -> Error {
    Error::new(
        ErrorCode::BadArgument,
        format!("cannot decode the value: {e}"),
    )
}

/// Why a session's calls fail once its stream or channel broke (a
/// transport error, or the node closed it): `NODE_DIED`, naming the node.
pub(crate) fn session_lost(address: &str, cause: &str) -> Error {
    Error::new(
        ErrorCode::NodeDied,
        format!(
            "the session with node {address} ended ({cause}); calls in flight on it \
             failed and were not retried"
        ),
    )
}

/// An error that is the node's refusal of the credential (never retried by
/// reconnecting: the same token would be refused again).
pub(crate) fn is_refusal(e: &Error) -> bool {
    matches!(
        e.code,
        ErrorCode::Unauthenticated | ErrorCode::PermissionDenied
    )
}
