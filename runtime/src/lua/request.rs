//! A request as a flow sees it. The raw parts stay in Rust; the Lua request table builds each
//! of `query`, `headers`, `cookies`, `form`, `params` and `body` only when a handler first
//! reads it (most handlers read one or two), which keeps a Lua route's fixed cost low.

use bytes::Bytes;

#[derive(Debug, Clone, Default)]
pub struct FlowRequest {
    pub method: String,
    pub path: String,
    /// The raw query string, without `?`.
    pub query: Option<String>,
    pub headers: http::HeaderMap,
    pub params: Vec<(String, String)>,
    pub body: Bytes,
    pub ip: String,
    pub request_id: String,
}

impl FlowRequest {
    /// One header's value; repeated headers joined with ", ".
    pub fn header(&self, name: &str) -> Option<String> {
        let mut values = self.headers.get_all(name).iter().peekable();
        values.peek()?;
        Some(values.map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()).collect::<Vec<_>>().join(", "))
    }

    /// Every header, lower-case names, repeated ones joined with ", ".
    pub fn header_pairs(&self) -> Vec<(String, String)> {
        self.headers
            .keys()
            .map(|name| (name.as_str().to_string(), self.header(name.as_str()).unwrap_or_default()))
            .collect()
    }

    /// Decoded query parameters (a repeated name keeps its last value).
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        self.query.as_deref().map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect()).unwrap_or_default()
    }

    pub fn cookie_pairs(&self) -> Vec<(String, String)> {
        self.headers
            .get_all(http::header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| {
                let (k, v) = pair.trim().split_once('=')?;
                Some((k.trim().to_string(), v.trim().trim_matches('"').to_string()))
            })
            .collect()
    }

    /// The form fields of an `application/x-www-form-urlencoded` body, else none.
    /// The value of one cookie (the first one of that name).
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.cookie_pairs().into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }

    pub fn form_pairs(&self) -> Vec<(String, String)> {
        let is_form = self
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));
        if is_form {
            form_urlencoded::parse(&self.body).into_owned().collect()
        } else {
            Vec::new()
        }
    }
}

/// What a state is serving right now: the request (read by the request table's lazy fields)
/// and the handler its flow's top level must register as its `ordinal`-th route, which must
/// still be `method` `path` (routes may not depend on the request).
pub struct RequestRun {
    pub request: FlowRequest,
    pub ordinal: usize,
    pub method: String,
    pub path: String,
    pub flow: String,
    /// Routes registered so far by this run of the top level.
    pub seen: usize,
    /// The wanted handler, once registered; `Err` if the route at `ordinal` was another one.
    pub handler: Option<Result<mlua::Function, ()>>,
    /// `Set-Cookie` values the stdlib adds to the response (sessions, CSRF).
    pub cookies: Vec<http::HeaderValue>,
    /// The session this request carries, once looked up (`Some(None)`: it carries none).
    pub session: Option<Option<(crate::identity::sessions::Session, crate::identity::users::User)>>,
}

impl RequestRun {
    /// `http.route` during a request: keep the wanted handler, check it is the same route.
    pub fn register(&mut self, method: &[u8], path: &[u8], handler: mlua::Function) {
        if self.seen == self.ordinal {
            let same = method.eq_ignore_ascii_case(self.method.as_bytes()) && path == self.path.as_bytes();
            self.handler = Some(if same { Ok(handler) } else { Err(()) });
        }
        self.seen += 1;
    }
}
