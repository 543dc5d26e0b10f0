//! Error answers: JSON (`{"error", "error_description", "request_id"}`) for API paths and API
//! clients, an HTML page (template `error.html`, overridable) for people. The text says what was
//! wrong; internal detail goes to the log only, tied to the same request id.

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::Full;

use crate::templates::Templates;

/// Path prefixes whose callers are programs, not people.
const API_PREFIXES: &[&str] = &[
    "/auth/admin/",
    "/auth/token",
    "/auth/oauth2/",
    "/auth/userinfo",
    "/auth/zanzibar/",
    "/auth/biscuit/",
    "/auth/passkey/",
    "/.well-known/",
    "/auth/.well-known/",
    "/healthz",
    "/readyz",
];

pub fn wants_json(path: &str, accept: Option<&str>) -> bool {
    if API_PREFIXES.iter().any(|p| path.starts_with(p)) {
        return true;
    }
    accept.is_some_and(|a| a.contains("application/json") && !a.contains("text/html"))
}

pub struct ErrorAnswer<'a> {
    pub status: StatusCode,
    /// A stable code word (`not_found`, `payload_too_large`, `server_error`...).
    pub code: &'a str,
    pub description: String,
    pub request_id: &'a str,
    pub json: bool,
}

pub fn error_response(e: ErrorAnswer<'_>, templates: &Templates) -> Response<Full<Bytes>> {
    let (content_type, body) = if e.json {
        let body = serde_json::json!({
            "error": e.code,
            "error_description": e.description,
            "request_id": e.request_id,
        });
        ("application/json", body.to_string())
    } else {
        let title = e.status.canonical_reason().unwrap_or("Error");
        let ctx = serde_json::json!({
            "status": e.status.as_u16(),
            "title": title,
            "message": e.description,
            "request_id": e.request_id,
        });
        let html = templates.render("error.html", &ctx).unwrap_or_else(|err| {
            tracing::warn!(error = %err, "error.html failed to render; using the built-in page");
            format!(
                "<!doctype html><title>{0} {1}</title><h1>{0} {1}</h1><p>{2}</p><p>Request id: <code>{3}</code></p>",
                e.status.as_u16(),
                escape(title),
                escape(&e.description),
                escape(e.request_id)
            )
        });
        ("text/html; charset=utf-8", html)
    };
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = e.status;
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}
