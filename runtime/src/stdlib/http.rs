//! `assay.http`: routes, the request a handler gets, the responses it returns, and an outbound
//! HTTP client. Reference: `stdlib/http.md`.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderName, HeaderValue};
use mlua::{AnyUserData, Function, Lua, Table, UserData, UserDataFields, UserDataMethods, Value};

use crate::identity::error::ErrorCode;
use crate::lua::{fail, require_phase, shared, Failure, FlowResponse, Outcome, Phase, RequestRun, RouteCollector};

/// HEAD is not among them: a HEAD request is answered by the GET route, without the body.
const METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];
/// Bodies an outbound call reads at most.
const MAX_OUTBOUND_BODY: usize = 10 * 1024 * 1024;

pub fn module(lua: &Lua) -> mlua::Result<Table> {
    let m = lua.create_table()?;
    m.set("route", lua.create_function(route)?)?;
    m.set(
        "html",
        lua.create_function(|lua, (body, status): (mlua::String, Option<u16>)| {
            respond(lua, status.unwrap_or(200), "text/html; charset=utf-8", Bytes::copy_from_slice(&body.as_bytes()))
        })?,
    )?;
    m.set(
        "text",
        lua.create_function(|lua, (body, status): (mlua::String, Option<u16>)| {
            respond(lua, status.unwrap_or(200), "text/plain; charset=utf-8", Bytes::copy_from_slice(&body.as_bytes()))
        })?,
    )?;
    m.set(
        "json",
        lua.create_function(|lua, (value, status): (Value, Option<u16>)| {
            let json = super::json::to_json(lua, value).map_err(|e| mlua::Error::runtime(format!("http.json: {e}")))?;
            let body = serde_json::to_vec(&json).map_err(mlua::Error::external)?;
            respond(lua, status.unwrap_or(200), "application/json", Bytes::from(body))
        })?,
    )?;
    m.set(
        "redirect",
        lua.create_function(|lua, (location, status): (String, Option<u16>)| {
            let status = status.unwrap_or(302);
            if !matches!(status, 301 | 302 | 303 | 307 | 308) {
                return Err(mlua::Error::runtime(format!("http.redirect: {status} is not a redirect status")));
            }
            let ud = respond(lua, status, "text/plain; charset=utf-8", Bytes::new())?;
            ud.borrow_mut::<FlowResponse>()?.headers.push((http::header::LOCATION, header_value(&location)?));
            Ok(ud)
        })?,
    )?;
    m.set(
        "status",
        lua.create_function(|lua, (status, body): (u16, Option<mlua::String>)| {
            let body = body.map(|b| Bytes::copy_from_slice(&b.as_bytes())).unwrap_or_default();
            respond(lua, status, "text/plain; charset=utf-8", body)
        })?,
    )?;
    m.set("request", lua.create_async_function(|lua, opts: Table| async move { outbound(lua, opts).await })?)?;
    m.set(
        "get",
        lua.create_async_function(|lua, (url, opts): (String, Option<Table>)| async move {
            let opts = with_method(&lua, opts, "GET", url)?;
            outbound(lua, opts).await
        })?,
    )?;
    m.set(
        "post",
        lua.create_async_function(|lua, (url, opts): (String, Option<Table>)| async move {
            let opts = with_method(&lua, opts, "POST", url)?;
            outbound(lua, opts).await
        })?,
    )?;
    Ok(m)
}

/// `http.route(method, path, handler)`: legal only while a flow's top level runs. At start-up
/// the engine learns the routes (validated here); a request's re-run of the top level only
/// keeps the handler it wants, matched against those exact routes without copying a string.
fn route(lua: &Lua, (method, path, handler): (mlua::String, mlua::String, Function)) -> mlua::Result<()> {
    require_phase(lua, "http.route", &[Phase::Load])?;
    if let Some(mut run) = lua.app_data_mut::<RequestRun>() {
        run.register(&method.as_bytes(), &path.as_bytes(), handler);
        return Ok(());
    }
    let method = method.to_str()?.to_ascii_uppercase();
    let path = path.to_str()?.to_string();
    if !METHODS.contains(&method.as_str()) {
        return Err(mlua::Error::runtime(format!("http.route: unsupported method {method:?}")));
    }
    crate::lua::flows::PathPattern::parse(&path).map_err(|e| mlua::Error::runtime(format!("http.route: {e}")))?;
    match lua.app_data_mut::<RouteCollector>() {
        Some(mut c) => {
            c.0.push((method, path, handler));
            Ok(())
        }
        None => Err(mlua::Error::runtime("http.route: no flow is being loaded")),
    }
}

/// A JSON response built in Rust (the admin helpers' errors).
pub(crate) fn json_response(lua: &Lua, status: u16, value: &serde_json::Value) -> mlua::Result<AnyUserData> {
    let body = serde_json::to_vec(value).map_err(mlua::Error::external)?;
    let ud = respond(lua, status, "application/json", Bytes::from(body))?;
    ud.borrow_mut::<FlowResponse>()?.headers.push((http::header::CACHE_CONTROL, HeaderValue::from_static("no-store")));
    Ok(ud)
}

fn respond(lua: &Lua, status: u16, content_type: &'static str, body: Bytes) -> mlua::Result<AnyUserData> {
    if !(100..=599).contains(&status) {
        return Err(mlua::Error::runtime(format!("http: {status} is not an HTTP status")));
    }
    lua.create_userdata(FlowResponse {
        status,
        headers: vec![(http::header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
        cookies: Vec::new(),
        body,
    })
}

fn header_value(v: &str) -> mlua::Result<HeaderValue> {
    HeaderValue::from_str(v).map_err(|_| mlua::Error::runtime(format!("http: {v:?} is not a valid header value")))
}

impl UserData for FlowResponse {
    fn add_fields<F: UserDataFields<Self>>(fields: &mut F) {
        fields.add_field_method_get("status", |_, this| Ok(this.status));
        fields.add_field_method_get("body", |lua, this| lua.create_string(&this.body));
    }

    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        // `resp:header(name, value)` replaces any earlier value; returns the response.
        methods.add_function("header", |_, (ud, name, value): (AnyUserData, String, String)| {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| mlua::Error::runtime(format!("header: {name:?} is not a header name")))?;
            let value = header_value(&value)?;
            {
                let mut this = ud.borrow_mut::<FlowResponse>()?;
                this.headers.retain(|(n, _)| *n != name);
                this.headers.push((name, value));
            }
            Ok(ud)
        });
        // `resp:cookie(name, value, opts)` adds a Set-Cookie; returns the response.
        methods.add_function("cookie", |lua, (ud, name, value, opts): (AnyUserData, String, String, Option<Table>)| {
            let secure_default = shared(lua)?.config.is_https();
            let cookie = set_cookie(&name, &value, opts.as_ref(), secure_default)?;
            ud.borrow_mut::<FlowResponse>()?.cookies.push(header_value(&cookie)?);
            Ok(ud)
        });
    }
}

/// A `Set-Cookie` value with safe defaults: `Path=/`, `HttpOnly`, `SameSite=Lax`, and `Secure`
/// when the public URL is HTTPS.
fn set_cookie(name: &str, value: &str, opts: Option<&Table>, secure_default: bool) -> mlua::Result<String> {
    let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    if name.is_empty() || !name.chars().all(token) {
        return Err(mlua::Error::runtime(format!("cookie: {name:?} is not a valid cookie name")));
    }
    let octet = |c: char| c.is_ascii_graphic() && !matches!(c, '"' | ',' | ';' | '\\');
    if !value.chars().all(octet) {
        return Err(mlua::Error::runtime(format!("cookie {name}: the value has characters a cookie cannot hold")));
    }
    let get_bool =
        |k: &str, d: bool| -> mlua::Result<bool> { Ok(opts.map(|o| o.get::<Option<bool>>(k)).transpose()?.flatten().unwrap_or(d)) };
    let get_str = |k: &str| -> mlua::Result<Option<String>> { Ok(opts.map(|o| o.get::<Option<String>>(k)).transpose()?.flatten()) };
    let mut s = format!("{name}={value}; Path={}", get_str("path")?.unwrap_or_else(|| "/".into()));
    if let Some(domain) = get_str("domain")? {
        s.push_str(&format!("; Domain={domain}"));
    }
    if let Some(max_age) = opts.map(|o| o.get::<Option<i64>>("max_age")).transpose()?.flatten() {
        s.push_str(&format!("; Max-Age={}", max_age.max(0)));
    }
    if get_bool("http_only", true)? {
        s.push_str("; HttpOnly");
    }
    let same_site = get_str("same_site")?.unwrap_or_else(|| "Lax".into());
    let same_site = match same_site.to_ascii_lowercase().as_str() {
        "lax" => "Lax",
        "strict" => "Strict",
        "none" => "None",
        _ => return Err(mlua::Error::runtime(format!("cookie {name}: same_site must be Lax, Strict or None"))),
    };
    s.push_str(&format!("; SameSite={same_site}"));
    if get_bool("secure", secure_default)? || same_site == "None" {
        s.push_str("; Secure");
    }
    Ok(s)
}

/// The metatable of the request table a handler receives (built by the state's runner with
/// `method` and `path`): every other field comes from the state's [`RequestRun`] when first
/// read, and `req:json()` decodes the body.
pub fn request_metatable(lua: &Lua) -> mlua::Result<Table> {
    let json = json_method(lua)?;
    let mt = lua.create_table()?;
    mt.set(
        "__index",
        lua.create_function(move |lua, (this, key): (Table, mlua::String)| -> mlua::Result<Value> {
            let key = key.to_str()?;
            if &*key == "json" {
                return Ok(Value::Function(json.clone()));
            }
            let Some(run) = lua.app_data_ref::<RequestRun>() else { return Ok(Value::Nil) };
            let req = &run.request;
            let value = match &*key {
                "query" => pairs_table(lua, &req.query_pairs())?,
                "headers" => pairs_table(lua, &req.header_pairs())?,
                "cookies" => pairs_table(lua, &req.cookie_pairs())?,
                "form" => pairs_table(lua, &req.form_pairs())?,
                "params" => pairs_table(lua, &req.params)?,
                "body" => Value::String(lua.create_string(&req.body)?),
                "ip" => Value::String(lua.create_string(&req.ip)?),
                "request_id" => Value::String(lua.create_string(&req.request_id)?),
                _ => return Ok(Value::Nil),
            };
            drop(run);
            this.raw_set(&*key, value.clone())?;
            Ok(value)
        })?,
    )?;
    // One metatable serves every request of this state: a flow that could reach it could
    // wrap `__index` and read the next request's form (a password). `getmetatable(req)` is false.
    mt.set("__metatable", false)?;
    Ok(mt)
}

fn pairs_table(lua: &Lua, items: &[(String, String)]) -> mlua::Result<Value> {
    let t = lua.create_table_with_capacity(0, items.len())?;
    for (k, v) in items {
        t.raw_set(k.as_str(), v.as_str())?;
    }
    Ok(Value::Table(t))
}

/// `req:json()` / `res:json()`: the body decoded, or nil, "bad_json: ...".
fn json_method(lua: &Lua) -> mlua::Result<Function> {
    lua.create_function(|lua, this: Table| {
        let body: mlua::String = this.get("body")?;
        match serde_json::from_slice::<serde_json::Value>(&body.as_bytes()) {
            Ok(v) => Ok(Outcome::Ok(super::json::from_json(lua, &v)?)),
            Err(e) => fail("bad_json", e),
        }
    })
}

/// The metatable of outbound responses (`res:json()`), built once per state.
fn outbound_response_metatable(lua: &Lua) -> mlua::Result<Table> {
    const KEY: &str = "assay.http.response_mt";
    if let Ok(Value::Table(mt)) = lua.named_registry_value::<Value>(KEY) {
        return Ok(mt);
    }
    let mt = lua.create_table()?;
    let methods = lua.create_table()?;
    methods.set("json", json_method(lua)?)?;
    mt.set("__index", methods)?;
    // Shared by every outbound response of this state: locked, like the request's.
    mt.set("__metatable", false)?;
    lua.set_named_registry_value(KEY, mt.clone())?;
    Ok(mt)
}

/// What a handler returned, as a response: a response object, or a string (an HTML page).
pub fn response_from(lua: &Lua, ret: Value) -> mlua::Result<FlowResponse> {
    match ret {
        Value::UserData(ud) if ud.is::<FlowResponse>() => ud.take::<FlowResponse>(),
        Value::String(s) => {
            let ud = respond(lua, 200, "text/html; charset=utf-8", Bytes::copy_from_slice(&s.as_bytes()))?;
            ud.take::<FlowResponse>()
        }
        // An error of `nil, err` returned as it is (`return err`): answered as `admin.fail` would,
        // with its code's status, so a handler that passes a refusal on gets the right one.
        Value::Table(t) if crate::lua::Failure::is_failure(lua, &t) => {
            let f = crate::lua::Failure::from_lua_value(&Value::Table(t)).ok_or_else(|| mlua::Error::runtime("an error without a code"))?;
            failure_response(lua, &f)?.take::<FlowResponse>()
        }
        Value::Nil => Err(mlua::Error::runtime("the handler returned no response (return http.html(...), http.json(...), ...)")),
        other => Err(mlua::Error::runtime(format!(
            "the handler returned a {} instead of a response (return http.html(...), http.json(...), ...)",
            other.type_name()
        ))),
    }
}

/// A copy of the caller's options with `method` and `url` set (the caller's table is left alone).
fn with_method(lua: &Lua, opts: Option<Table>, method: &str, url: String) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    if let Some(opts) = opts {
        for pair in opts.pairs::<Value, Value>() {
            let (k, v) = pair?;
            t.raw_set(k, v)?;
        }
    }
    t.set("method", method)?;
    t.set("url", url)?;
    Ok(t)
}

/// `http.request{ method, url, headers, body | json | form, timeout_ms }`.
async fn outbound(lua: Lua, opts: Table) -> mlua::Result<Outcome<Table>> {
    require_phase(&lua, "http.request", &[Phase::Request, Phase::Script, Phase::Claims])?;
    let client = shared(&lua)?.client.clone();
    let url: String = opts.get("url")?;
    let method: String = opts.get::<Option<String>>("method")?.unwrap_or_else(|| "GET".into());
    let method = reqwest::Method::from_bytes(method.to_ascii_uppercase().as_bytes())
        .map_err(|_| mlua::Error::runtime(format!("http.request: bad method {method:?}")))?;
    let parsed = match url::Url::parse(&url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") => u,
        Ok(_) => return fail("bad_url", format!("{url:?} is not an http(s) URL")),
        Err(e) => return fail("bad_url", format!("{url:?}: {e}")),
    };
    let timeout = Duration::from_millis(opts.get::<Option<u64>>("timeout_ms")?.unwrap_or(10_000));
    let mut rb = client.request(method, parsed).timeout(timeout);
    if let Some(headers) = opts.get::<Option<Table>>("headers")? {
        for pair in headers.pairs::<String, String>() {
            let (k, v) = pair?;
            rb = rb.header(k, v);
        }
    }
    if let Some(v) = opts.get::<Option<Value>>("json")? {
        let json = super::json::to_json(&lua, v).map_err(|e| mlua::Error::runtime(format!("http.request: {e}")))?;
        rb = rb.json(&json);
    } else if let Some(form) = opts.get::<Option<Table>>("form")? {
        let mut pairs = Vec::new();
        for pair in form.pairs::<String, String>() {
            pairs.push(pair?);
        }
        rb = rb.form(&pairs);
    } else if let Some(body) = opts.get::<Option<mlua::String>>("body")? {
        rb = rb.body(body.as_bytes().to_vec());
    }
    let resp = match rb.send().await {
        Ok(r) => r,
        Err(e) if e.is_timeout() => return fail("timeout", e),
        Err(e) if e.is_connect() => return fail("connect_error", e),
        Err(e) => return fail("http_error", e),
    };
    let status = resp.status().as_u16();
    // Repeated headers are joined with ", ", as on requests.
    let headers = lua.create_table()?;
    for name in resp.headers().keys() {
        let joined: Vec<String> = resp.headers().get_all(name).iter().map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()).collect();
        headers.set(name.as_str(), joined.join(", "))?;
    }
    if resp.content_length().is_some_and(|n| n as usize > MAX_OUTBOUND_BODY) {
        return fail("too_large", format!("the response body is over {MAX_OUTBOUND_BODY} bytes"));
    }
    let body = match resp.bytes().await {
        Ok(b) if b.len() > MAX_OUTBOUND_BODY => return fail("too_large", "the response body is too large"),
        Ok(b) => b,
        Err(e) => return fail("http_error", e),
    };
    let t = lua.create_table()?;
    t.set("status", status)?;
    t.set("headers", headers)?;
    t.set("body", lua.create_string(&body)?)?;
    t.set_metatable(Some(outbound_response_metatable(&lua)?));
    Ok(Outcome::Ok(t))
}

/// The JSON error every admin endpoint answers with (`admin.error`, `admin.fail`).
pub(crate) fn error_response(lua: &Lua, status: u16, code: &str, description: &str) -> mlua::Result<AnyUserData> {
    let request_id = lua.app_data_ref::<RequestRun>().map(|r| r.request.request_id.clone()).unwrap_or_default();
    let body = serde_json::json!({ "error": code, "error_description": description, "request_id": request_id });
    json_response(lua, status, &body)
}

/// The JSON answer to a failure: its code's status, the code (`invalid` as `invalid_field`,
/// `bad_json` as `invalid_request`, the API's names), the message, and `Retry-After` from the
/// failure's details. `WWW-Authenticate` on a 401.
pub(crate) fn failure_response(lua: &Lua, f: &Failure) -> mlua::Result<AnyUserData> {
    let status = status_of(&f.code);
    let code = match f.code.as_str() {
        "invalid" => "invalid_field",
        "bad_json" => "invalid_request",
        "internal" => "server_error",
        other => other,
    };
    let resp = error_response(lua, status, code, &f.message)?;
    {
        let mut r = resp.borrow_mut::<crate::lua::FlowResponse>()?;
        if status == 429 || status == 503 {
            let secs = f.retry_after().unwrap_or(1);
            if let Ok(v) = http::HeaderValue::from_str(&secs.to_string()) {
                r.headers.push((http::header::RETRY_AFTER, v));
            }
        }
        if status == 401 {
            r.headers.push((http::header::WWW_AUTHENTICATE, http::HeaderValue::from_static("Bearer realm=\"assay admin\"")));
        }
    }
    Ok(resp)
}

/// The status of a failure code: the typed codes' own, and the few the admin API adds.
fn status_of(code: &str) -> u16 {
    match code {
        "invalid_field" | "weak_password" => 422,
        "invalid_request" => 400,
        "unsupported_media_type" => 415,
        other => ErrorCode::parse(other).map_or(500, ErrorCode::status),
    }
}
