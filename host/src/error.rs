//! The typed error every failed operation carries to the driver (defined
//! once, in `reef-core`, for the host, the control plane and the drivers).

pub use reef_core::{ErrorCode, ReefError, ReefResult};
