//! What a protocol endpoint answers, before it becomes an HTTP response: JSON, a redirect, or a
//! page named by template (the protocol core never renders HTML itself), plus headers. The
//! OAuth error type carries the RFCs' `error` codes and statuses.

use serde_json::Value;

#[derive(Debug, Clone)]
pub enum Body {
    Json(Value),
    /// A template and its context; rendered by the caller through `Templates`.
    Page(&'static str, Value),
    Redirect(String),
    Empty,
}

#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: Body,
    pub headers: Vec<(&'static str, String)>,
    /// The browser's session ended here: the caller clears the session cookie.
    pub clear_session: bool,
}

impl Reply {
    pub fn json(status: u16, v: Value) -> Reply {
        Reply {
            status,
            body: Body::Json(v),
            headers: vec![("cache-control", "no-store".into()), ("pragma", "no-cache".into())],
            clear_session: false,
        }
    }

    /// 303: the browser follows with a GET whatever the method was (a POSTed form included).
    pub fn redirect(location: String) -> Reply {
        Reply { status: 303, body: Body::Redirect(location), headers: vec![("cache-control", "no-store".into())], clear_session: false }
    }

    pub fn page(status: u16, template: &'static str, ctx: Value) -> Reply {
        Reply {
            status,
            body: Body::Page(template, ctx),
            headers: vec![
                ("cache-control", "no-store".into()),
                ("x-frame-options", "DENY".into()),
                ("content-security-policy", "frame-ancestors 'none'".into()),
                ("referrer-policy", "no-referrer".into()),
            ],
            clear_session: false,
        }
    }

    pub fn empty(status: u16) -> Reply {
        Reply { status, body: Body::Empty, headers: vec![("cache-control", "no-store".into())], clear_session: false }
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Reply {
        self.headers.retain(|(n, _)| *n != name);
        self.headers.push((name, value.into()));
        self
    }

    /// The error page for a request that cannot be answered at the client's redirect URI
    /// (unknown client, unregistered redirect URI): never a redirect.
    pub fn error_page(status: u16, error: &str, description: &str) -> Reply {
        Reply::titled_error_page(status, error, "This sign-in request cannot be completed", description)
    }

    pub fn titled_error_page(status: u16, error: &str, title: &str, description: &str) -> Reply {
        Reply::page(
            status,
            "error.html",
            serde_json::json!({
                "status": status,
                "code": error,
                "title": title,
                "message": description,
                "description": description,
            }),
        )
    }
}

/// An OAuth 2.0 / OpenID Connect error: `error`, `error_description`, and the status the token
/// style endpoints answer with.
#[derive(Debug, Clone)]
pub struct OAuthError {
    pub code: &'static str,
    pub description: String,
    pub status: u16,
}

macro_rules! oauth_errors {
    ($($name:ident => $code:literal, $status:literal;)*) => {
        impl OAuthError {
            $(pub fn $name(description: impl Into<String>) -> OAuthError {
                OAuthError { code: $code, description: description.into(), status: $status }
            })*
        }
    };
}

oauth_errors! {
    invalid_request => "invalid_request", 400;
    invalid_client => "invalid_client", 401;
    invalid_grant => "invalid_grant", 400;
    unauthorized_client => "unauthorized_client", 400;
    unsupported_grant_type => "unsupported_grant_type", 400;
    unsupported_response_type => "unsupported_response_type", 400;
    invalid_scope => "invalid_scope", 400;
    access_denied => "access_denied", 400;
    login_required => "login_required", 400;
    consent_required => "consent_required", 400;
    interaction_required => "interaction_required", 400;
    request_not_supported => "request_not_supported", 400;
    request_uri_not_supported => "request_uri_not_supported", 400;
    invalid_token => "invalid_token", 401;
    insufficient_scope => "insufficient_scope", 403;
}

impl OAuthError {
    /// The JSON answer of the token, introspection and revocation endpoints (RFC 6749 §5.2).
    pub fn reply(&self) -> Reply {
        Reply::json(self.status, serde_json::json!({ "error": self.code, "error_description": self.description }))
    }
}
