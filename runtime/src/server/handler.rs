//! One request, from hyper to a response: request id, access log, built-in routes, module
//! switch, body limit, the flow, and a 500 (never a crash) when anything below panics.

use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use futures_util::FutureExt;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use tracing::Instrument;

use super::client_ip::client_ip;
use super::errors::{error_response, wants_json, ErrorAnswer};
use super::App;
use crate::lua::{FlowResponse, HttpRequest, RouteMatch, RunError};

pub async fn handle(app: Arc<App>, req: Request<Incoming>, peer: SocketAddr) -> Response<Full<Bytes>> {
    let request_id = request_id(&req);
    let span = tracing::info_span!("request", request_id = %request_id);
    async move {
        let started = Instant::now();
        let method = req.method().clone();
        let path = req.uri().path().to_string();
        let json = wants_json(&path, req.headers().get(header::ACCEPT).and_then(|v| v.to_str().ok()));
        let routed = AssertUnwindSafe(route(&app, req, peer, &request_id, json)).catch_unwind().await;
        let mut resp = routed.unwrap_or_else(|panic| {
            let what = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("(no message)");
            tracing::error!(panic = what, "request handler panicked");
            internal_error(&app, &request_id, json)
        });
        if let Ok(v) = HeaderValue::from_str(&request_id) {
            resp.headers_mut().insert("x-request-id", v);
        }
        // On every answer, errors included: a browser pins HTTPS from whichever it sees first.
        if let Some(v) = app.config.hsts().and_then(|h| HeaderValue::from_str(&h).ok()) {
            resp.headers_mut().insert(header::STRICT_TRANSPORT_SECURITY, v);
        }
        let status = resp.status().as_u16();
        let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
        tracing::info!(target: "access", %method, %path, status, latency_ms = format_args!("{latency_ms:.2}"), "request");
        resp
    }
    .instrument(span)
    .await
}

/// The caller's id when it is a sane token (a proxy's trace id), else a fresh one.
fn request_id<B>(req: &Request<B>) -> String {
    req.headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 64 && v.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)))
        .map(str::to_string)
        .unwrap_or_else(|| hex::encode(rand::random::<[u8; 12]>()))
}

async fn route(app: &App, req: Request<Incoming>, peer: SocketAddr, request_id: &str, json: bool) -> Response<Full<Bytes>> {
    let fail = |status: StatusCode, code: &str, description: String| {
        error_response(ErrorAnswer { status, code, description, request_id, json }, &app.templates)
    };
    let is_head = req.method() == Method::HEAD;
    let method = if is_head { "GET".to_string() } else { req.method().as_str().to_string() };
    let path = req.uri().path().to_string();

    match (method.as_str(), path.as_str()) {
        ("GET", "/healthz") => return strip_if_head(json_ok(StatusCode::OK, r#"{"status":"ok"}"#), is_head),
        ("GET", "/readyz") => return strip_if_head(readiness(app).await, is_head),
        (_, "/healthz" | "/readyz") => {
            return with_allow(
                fail(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", format!("{method} is not allowed here")),
                &["GET", "HEAD"],
            )
        }
        _ => {}
    }

    let not_found = || fail(StatusCode::NOT_FOUND, "not_found", format!("nothing is served at {path}"));
    if let Some(module) = crate::modules::owner_of(&path) {
        if !app.modules.is_enabled(module) {
            return not_found();
        }
    }
    let (entry, params) = match app.lua.routes().find(&method, &path) {
        RouteMatch::Found(entry, params) => (entry, params),
        RouteMatch::MethodNotAllowed(allowed) => {
            let allowed: Vec<&str> = allowed.iter().map(String::as_str).collect();
            return with_allow(
                fail(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", format!("{method} is not allowed on {path}")),
                &allowed,
            );
        }
        RouteMatch::NotFound => return not_found(),
    };

    let limit = app.config.server.max_body_bytes;
    let (parts, mut body) = req.into_parts();
    let within = std::time::Duration::from_secs(app.config.server.body_read_timeout_secs);
    let body = match tokio::time::timeout(within, read_body(&mut body, limit)).await.unwrap_or(Err(BodyError::Slow)) {
        Ok(bytes) => bytes,
        Err(BodyError::Slow) => {
            let mut resp = fail(
                StatusCode::REQUEST_TIMEOUT,
                "request_timeout",
                format!("the request body did not arrive within {} s", within.as_secs()),
            );
            resp.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
            return resp;
        }
        Err(BodyError::TooLarge) => {
            // Answered now; the rest of the upload is read and dropped behind the answer.
            if !expects_continue(&parts.headers) {
                tokio::spawn(drain(body));
            }
            let mut resp =
                fail(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", format!("the request body is larger than {limit} bytes"));
            resp.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
            return resp;
        }
        Err(BodyError::Read(e)) => return fail(StatusCode::BAD_REQUEST, "bad_request", format!("the request body could not be read: {e}")),
    };

    let content_type = parts.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    if let Some(place) = super::nul::nul_in(&path, parts.uri.query(), content_type, &body) {
        return fail(StatusCode::BAD_REQUEST, "invalid_request", format!("{place} contains a NUL byte"));
    }

    let server = &app.config.server;
    let ip = client_ip(peer.ip(), &parts.headers, &server.trusted_proxies, server.forwarded_header);
    let flow_req = HttpRequest {
        method,
        path,
        query: parts.uri.query().map(str::to_string),
        headers: parts.headers,
        params,
        body,
        ip: ip.to_string(),
        request_id: request_id.to_string(),
    };
    if flow_req.too_many_params() {
        let most = crate::request::MAX_PARAMS;
        return fail(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            format!("too many parameters (at most {most} in the query and {most} in a form body)"),
        );
    }
    match app.lua.run_route(entry, flow_req).await {
        Ok(resp) => strip_if_head(into_http(resp), is_head),
        Err(e) => {
            let flow = app.lua.flows().get(entry.flow).map(|f| f.name.as_str()).unwrap_or("?");
            match &e {
                RunError::Budget(_) => tracing::error!(flow, error = %e, "flow stopped"),
                RunError::Lua(_) => tracing::error!(flow, error = %e, "flow failed"),
            }
            internal_error(app, request_id, json)
        }
    }
}

enum BodyError {
    TooLarge,
    Slow,
    Read(hyper::Error),
}

/// How much of an oversized body is read and thrown away after the 413, and for how long: a
/// client still sending when the server closes would see a reset instead of the 413 (a
/// lingering read, as nginx does). Past either bound the connection just closes.
const DRAIN_BYTES: u64 = 1024 * 1024;
const DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(2);

/// The whole body if it is at most `limit` bytes. A declared length over the limit is refused
/// before a byte is read (waiting for a body we will refuse only ties up the connection); a
/// streamed one as soon as it passes the limit.
async fn read_body(body: &mut Incoming, limit: u64) -> Result<Bytes, BodyError> {
    use hyper::body::Body;
    if body.size_hint().exact().is_some_and(|n| n > limit) {
        return Err(BodyError::TooLarge);
    }
    let mut buf = bytes::BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(BodyError::Read)?;
        let Ok(data) = frame.into_data() else { continue };
        if (buf.len() + data.len()) as u64 > limit {
            return Err(BodyError::TooLarge);
        }
        buf.extend_from_slice(&data);
    }
    Ok(buf.freeze())
}

/// Reads and drops what is left of a refused body, within `DRAIN_BYTES` and `DRAIN_TIME`.
/// While this holds the body the connection stays open for it; dropping it closes.
async fn drain(mut body: Incoming) {
    let _ = tokio::time::timeout(DRAIN_TIME, async {
        let mut seen: u64 = 0;
        while let Some(Ok(frame)) = body.frame().await {
            seen += frame.data_ref().map_or(0, |d| d.len() as u64);
            if seen > DRAIN_BYTES {
                break;
            }
        }
    })
    .await;
}

/// A client that sent `Expect: 100-continue` sends no body until told to: reading it would
/// tell it to, so it is left unread.
fn expects_continue(headers: &http::HeaderMap) -> bool {
    headers.get(header::EXPECT).is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"))
}

fn internal_error(app: &App, request_id: &str, json: bool) -> Response<Full<Bytes>> {
    error_response(
        ErrorAnswer {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: "server_error",
            description: format!("the server could not complete the request (request id {request_id})"),
            request_id,
            json,
        },
        &app.templates,
    )
}

async fn readiness(app: &App) -> Response<Full<Bytes>> {
    let problem = match app.db.ping().await {
        Err(e) => Some(format!("database unreachable: {e}")),
        Ok(()) => match app.db.migrations_current().await {
            Ok(true) => None,
            Ok(false) => Some("database migrations are not current".to_string()),
            Err(e) => Some(format!("cannot read the migration ledger: {e}")),
        },
    };
    match problem {
        None => json_ok(StatusCode::OK, r#"{"status":"ready"}"#),
        Some(reason) => {
            tracing::warn!(%reason, "not ready");
            let body = serde_json::json!({ "status": "unavailable", "reason": reason }).to_string();
            json_ok(StatusCode::SERVICE_UNAVAILABLE, &body)
        }
    }
}

fn json_ok(status: StatusCode, body: &str) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::copy_from_slice(body.as_bytes())));
    *resp.status_mut() = status;
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

fn with_allow(mut resp: Response<Full<Bytes>>, methods: &[&str]) -> Response<Full<Bytes>> {
    if let Ok(v) = HeaderValue::from_str(&methods.join(", ")) {
        resp.headers_mut().insert(header::ALLOW, v);
    }
    resp
}

fn strip_if_head(resp: Response<Full<Bytes>>, is_head: bool) -> Response<Full<Bytes>> {
    if !is_head {
        return resp;
    }
    let (parts, _) = resp.into_parts();
    Response::from_parts(parts, Full::new(Bytes::new()))
}

fn into_http(r: FlowResponse) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(r.body));
    *resp.status_mut() = StatusCode::from_u16(r.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = resp.headers_mut();
    for (name, value) in r.headers {
        headers.insert(name, value);
    }
    for cookie in r.cookies {
        headers.append(header::SET_COOKIE, cookie);
    }
    resp
}
