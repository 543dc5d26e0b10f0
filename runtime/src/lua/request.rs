//! What a Lua state is serving right now.

use crate::request::HttpRequest;

/// What a state is serving right now: the request (read by the request table's lazy fields
/// and, without a copy, by Rust endpoints such as `oidc.token`: they hold the `Arc`)
/// and the handler its flow's top level must register as its `ordinal`-th route, which must
/// still be `method` `path` (routes may not depend on the request).
pub struct RequestRun {
    pub request: std::sync::Arc<HttpRequest>,
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
