//! Who may use the dashboard: the API's credentials, checked in one place
//! ([`Access::accepts`]), and browser sessions that remember a check. The
//! dashboard reads as the credential that logged in: a tenant's token sees
//! that tenant's work only (as its `host list` does), the admin's and the
//! node credential see everything.
//!
//! A browser logs in once (`/login?token=...` or the login form) and gets a
//! cookie holding a random session id, never the token. Sessions are few
//! and expire, so a node keeps at most [`MAX_SESSIONS`] of them whatever
//! the browsers do; past it the credential holding the most gives its
//! oldest, so one tenant logging in again and again ends its own sessions,
//! not another's.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::header::{AUTHORIZATION, COOKIE};
use axum::http::HeaderMap;
use reef_core::Caller;
use reef_proto::auth::CheckToken;

use crate::rpc::auth::Authenticator;

use crate::rpc::state::scope::Viewer;

/// The session cookie's name.
pub const COOKIE_NAME: &str = "reef_session";
/// Sessions kept at once; logging in beyond this ends the oldest of the
/// credential holding the most.
pub const MAX_SESSIONS: usize = 256;
/// How long a session lasts after login.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);

/// The credentials the dashboard accepts.
#[derive(Clone)]
pub enum Access {
    /// One token, which sees everything (a node without tenants).
    Token(CheckToken),
    /// Every credential of the cluster, as the node's API takes them
    /// (`rpc::auth`): each sees what it would see there.
    Cluster(Arc<Authenticator>),
}

impl Access {
    pub fn new(check: CheckToken) -> Access {
        Access::Token(check)
    }

    /// The cluster's credentials, each reading as itself.
    pub fn cluster(auth: Arc<Authenticator>) -> Access {
        Access::Cluster(auth)
    }

    /// Who `token` is, when the API would accept it: the one check of the
    /// dashboard (a bearer header and a login both end here).
    pub async fn accepts(&self, token: &str) -> Option<Viewer> {
        let header = format!("Bearer {token}");
        match self {
            Access::Token(check) => check.accepts(header.as_bytes()).then(Viewer::everything),
            Access::Cluster(auth) => match auth.caller(Some(header.as_bytes())).await {
                Ok((Caller::Admin | Caller::Node, _)) => Some(Viewer::everything()),
                Ok((Caller::Tenant(tenant), _)) => Some(Viewer::tenant(tenant)),
                Err(_) => None,
            },
        }
    }

    /// The `Authorization: Bearer <token>` header's caller.
    async fn bearer(&self, headers: &HeaderMap) -> Option<Viewer> {
        let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
        self.accepts(value.strip_prefix("Bearer ")?).await
    }
}

struct Session {
    viewer: Viewer,
    expires: Instant,
}

/// The logged-in browsers: session id → caller, bounded and expiring.
#[derive(Default)]
pub struct Sessions {
    live: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    /// A new session for `viewer`: its id, for the cookie.
    pub fn open(&self, viewer: Viewer) -> std::io::Result<String> {
        let id = reef_proto::auth::generate_token()?;
        let now = Instant::now();
        let mut live = self.live.lock().unwrap();
        live.retain(|_, s| s.expires > now);
        if live.len() >= MAX_SESSIONS {
            // Per viewer: sessions held, and the id of the oldest.
            let mut held: HashMap<&Viewer, (usize, &Session, &String)> = HashMap::new();
            for (id, s) in live.iter() {
                let entry = held.entry(&s.viewer).or_insert((0, s, id));
                entry.0 += 1;
                if s.expires < entry.1.expires {
                    (entry.1, entry.2) = (s, id);
                }
            }
            let oldest = held
                .into_values()
                .max_by_key(|(n, s, _)| (*n, std::cmp::Reverse(s.expires)))
                .map(|(_, _, id)| id.clone());
            if let Some(oldest) = oldest {
                live.remove(&oldest);
            }
        }
        live.insert(
            id.clone(),
            Session {
                viewer,
                expires: now + SESSION_TTL,
            },
        );
        Ok(id)
    }

    /// The caller of session `id`, while it lasts.
    pub fn get(&self, id: &str) -> Option<Viewer> {
        let mut live = self.live.lock().unwrap();
        match live.get(id) {
            Some(s) if s.expires > Instant::now() => Some(s.viewer.clone()),
            Some(_) => {
                live.remove(id);
                None
            }
            None => None,
        }
    }

    pub fn close(&self, id: &str) {
        self.live.lock().unwrap().remove(id);
    }

    pub fn len(&self) -> usize {
        self.live.lock().unwrap().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The session id in the request's cookie, if any.
pub fn session_id(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name == COOKIE_NAME).then_some(value)
        })
}

/// The caller of a request: a live session's, or the bearer token's.
pub async fn caller(access: &Access, sessions: &Sessions, headers: &HeaderMap) -> Option<Viewer> {
    match session_id(headers).and_then(|id| sessions.get(id)) {
        Some(viewer) => Some(viewer),
        None => access.bearer(headers).await,
    }
}

/// The `Set-Cookie` value of session `id` (`None`: the one that ends it).
pub fn cookie(id: Option<&str>) -> String {
    match id {
        Some(id) => format!(
            "{COOKIE_NAME}={id}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}",
            SESSION_TTL.as_secs()
        ),
        None => format!("{COOKIE_NAME}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_token_is_checked_and_sessions_are_bounded() {
        let access = Access::new(CheckToken::new("secret"));
        assert!(access.accepts("secret").await.is_some());
        assert!(access.accepts("secreT").await.is_none());
        assert!(access.accepts("").await.is_none());

        let sessions = Sessions::default();
        let first = sessions.open(Viewer::default()).unwrap();
        assert_ne!(first, "secret");
        assert!(sessions.get(&first).is_some());
        for _ in 0..MAX_SESSIONS + 10 {
            sessions.open(Viewer::default()).unwrap();
        }
        assert_eq!(sessions.len(), MAX_SESSIONS);
        assert!(
            sessions.get(&first).is_none(),
            "the oldest session ends first"
        );
        assert!(sessions.get("not-a-session").is_none());
    }

    #[tokio::test]
    async fn cookies_and_bearer_headers_name_the_caller() {
        let access = Access::new(CheckToken::new("secret"));
        let sessions = Sessions::default();
        let id = sessions.open(Viewer::default()).unwrap();
        let mut headers = HeaderMap::new();
        assert!(caller(&access, &sessions, &headers).await.is_none());
        headers.insert(COOKIE, format!("a=b; {COOKIE_NAME}={id}").parse().unwrap());
        assert_eq!(session_id(&headers), Some(id.as_str()));
        assert!(caller(&access, &sessions, &headers).await.is_some());
        sessions.close(&id);
        assert!(caller(&access, &sessions, &headers).await.is_none());
        headers.insert(AUTHORIZATION, "Bearer secret".parse().unwrap());
        assert!(caller(&access, &sessions, &headers).await.is_some());
        headers.insert(AUTHORIZATION, "Bearer wrong".parse().unwrap());
        assert!(caller(&access, &sessions, &headers).await.is_none());
    }

    #[test]
    fn logins_past_the_cap_end_the_sessions_of_the_viewer_holding_most() {
        let sessions = Sessions::default();
        let a = sessions
            .open(Viewer::tenant(reef_core::TenantId::new("a")))
            .unwrap();
        let admin = sessions.open(Viewer::everything()).unwrap();
        let b = reef_core::TenantId::new("b");
        let first_b = sessions.open(Viewer::tenant(b.clone())).unwrap();
        for _ in 0..(2 * MAX_SESSIONS) {
            sessions.open(Viewer::tenant(b.clone())).unwrap();
        }
        assert_eq!(sessions.len(), MAX_SESSIONS);
        assert!(sessions.get(&a).is_some(), "A's session was ended");
        assert!(
            sessions.get(&admin).is_some(),
            "the admin's session was ended"
        );
        assert!(sessions.get(&first_b).is_none(), "B's oldest goes first");
    }
}
