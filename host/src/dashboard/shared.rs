//! What the dashboard's handlers share.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::StatusCode;

use super::auth::{Access, Sessions};
use crate::rpc::state::api::StateApi;
use crate::rpc::state::scope::Viewer;

/// What the handlers share.
pub struct Dashboard {
    pub api: Arc<StateApi>,
    pub access: Access,
    pub sessions: Sessions,
}

/// The authenticated caller of a request (put there by the dashboard's authentication layer).
#[derive(Clone)]
pub struct Caller(pub Viewer);

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = StatusCode;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Caller>()
            .cloned()
            .ok_or(StatusCode::UNAUTHORIZED)
    }
}
