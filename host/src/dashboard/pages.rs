//! The HTML pages, the login flow and the embedded assets (nothing is
//! loaded from elsewhere at run time).

use std::sync::Arc;

use axum::extract::{Form, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::auth;
use super::shared::Dashboard;

const LAYOUT: &str = include_str!("assets/layout.html");
const LOGIN: &str = include_str!("assets/login.html");
const APP_JS: &str = include_str!("assets/app.js");
const STYLE_CSS: &str = include_str!("assets/style.css");

/// The pages: (path segment, title, what the page holds before its script
/// fills it in).
const PAGES: &[(&str, &str, &str)] = &[
    (
        "",
        "Overview",
        r#"<section><h2>Tasks</h2><div id="counts" class="counts"></div></section>
<section><h2>Nodes</h2><table id="nodes"></table></section>"#,
    ),
    (
        "tasks",
        "Tasks",
        r#"<section><h2>Counts</h2><div id="counts" class="counts"></div></section>
<section><h2>Failed</h2><table id="failed"></table></section>
<section><h2>Recent tasks</h2><div class="pager" data-table="tasks"></div><table id="tasks"></table></section>"#,
    ),
    (
        "actors",
        "Actors",
        r#"<section><div class="pager" data-table="rows"></div><table id="rows"></table></section>"#,
    ),
    (
        "objects",
        "Objects",
        r#"<section><div class="pager" data-table="rows"></div><table id="rows"></table></section>"#,
    ),
    (
        "groups",
        "Placement groups",
        r#"<section><div class="pager" data-table="rows"></div><table id="rows"></table></section>"#,
    ),
    (
        "jobs",
        "Jobs",
        r#"<section><div class="pager" data-table="rows"></div><table id="rows"></table></section>"#,
    ),
    (
        "logs",
        "Logs",
        r#"<form id="log-form"><label>Task, actor call or actor id <input id="log-id" name="id" placeholder="0x..." size="24"></label>
<button>Show</button> <button type="button" id="log-older">Previous page</button> <button type="button" id="log-newer">Next page</button></form>
<p id="log-status"></p><pre id="log"></pre>"#,
    ),
    (
        "timeline",
        "Timeline",
        r#"<p>Recent finished tasks, one lane per node and worker. <a href="/api/timeline" download="reef-timeline.json">Download as a Chrome trace</a> (opens in Perfetto or chrome://tracing).</p>
<div id="timeline"></div>"#,
    ),
];

/// `/` and `/{page}`.
pub async fn page(page: Option<Path<String>>) -> Response {
    let name = page.map(|Path(p)| p).unwrap_or_default();
    let Some(&(path, title, body)) = PAGES.iter().find(|(p, _, _)| *p == name) else {
        return (
            StatusCode::NOT_FOUND,
            Html(render(None, "Not found", "<p>No such page.</p>")),
        )
            .into_response();
    };
    Html(render(Some(path), title, body)).into_response()
}

fn render(current: Option<&str>, title: &str, body: &str) -> String {
    let nav: String = PAGES
        .iter()
        .map(|(path, title, _)| {
            let class = if Some(*path) == current {
                " class=\"here\""
            } else {
                ""
            };
            format!("<a href=\"/{path}\"{class}>{title}</a>")
        })
        .collect();
    LAYOUT
        .replace("{{title}}", title)
        .replace("{{page}}", current.unwrap_or("none"))
        .replace("{{nav}}", &nav)
        .replace("{{body}}", body)
}

/// The login page, with `error` above the form.
pub fn login_page(status: StatusCode, error: Option<&str>) -> Response {
    let error = error
        .map(|e| format!("<p class=\"error\">{e}</p>"))
        .unwrap_or_default();
    (status, Html(LOGIN.replace("{{error}}", &error))).into_response()
}

#[derive(Deserialize)]
pub struct Login {
    token: Option<String>,
}

/// `GET /login[?token=...]`: the form, or a login with the token given.
pub async fn login_get(State(d): State<Arc<Dashboard>>, Query(login): Query<Login>) -> Response {
    match login.token {
        Some(token) => log_in(&d, &token).await,
        None => login_page(StatusCode::OK, None),
    }
}

/// `POST /login` (the form).
pub async fn login_post(State(d): State<Arc<Dashboard>>, Form(login): Form<Login>) -> Response {
    log_in(&d, login.token.as_deref().unwrap_or_default()).await
}

async fn log_in(d: &Dashboard, token: &str) -> Response {
    let Some(viewer) = d.access.accepts(token.trim()).await else {
        return login_page(StatusCode::UNAUTHORIZED, Some("Wrong token."));
    };
    let id = match d.sessions.open(viewer) {
        Ok(id) => id,
        Err(e) => {
            tracing::warn!("dashboard: no session id: {e}");
            return (StatusCode::INTERNAL_SERVER_ERROR, "no session id").into_response();
        }
    };
    with_cookie(Redirect::to("/").into_response(), Some(&id))
}

/// `/logout`: ends the browser's session.
pub async fn logout(State(d): State<Arc<Dashboard>>, headers: HeaderMap) -> Response {
    if let Some(id) = auth::session_id(&headers) {
        d.sessions.close(id);
    }
    with_cookie(Redirect::to("/login").into_response(), None)
}

fn with_cookie(mut reply: Response, id: Option<&str>) -> Response {
    if let Ok(value) = HeaderValue::from_str(&auth::cookie(id)) {
        reply.headers_mut().insert(header::SET_COOKIE, value);
    }
    reply
}

/// `/assets/{file}`: the script and the style sheet.
pub async fn asset(Path(file): Path<String>) -> Response {
    let (body, kind) = match file.as_str() {
        "app.js" => (APP_JS, "text/javascript; charset=utf-8"),
        "style.css" => (STYLE_CSS, "text/css; charset=utf-8"),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    ([(header::CONTENT_TYPE, kind)], body).into_response()
}
