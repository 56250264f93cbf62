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
