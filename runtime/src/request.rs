//! An HTTP request as the engine's endpoints see it, Rust (the OpenID provider) and Lua alike:
//! the server builds it once and every layer reads the same value, with no copy. The raw parts
//! stay in Rust; the Lua request table builds each of `query`, `headers`, `cookies`, `form`,
//! `params` and `body` only when a handler first reads it (most handlers read one or two),
//! which keeps a Lua route's fixed cost low.

use bytes::Bytes;

#[derive(Debug, Clone, Default)]
pub struct HttpRequest {
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

impl HttpRequest {
    /// One header's value; repeated headers joined with ", ".
    pub fn header(&self, name: &str) -> Option<String> {
        let mut values = self.headers.get_all(name).iter().peekable();
        values.peek()?;
        Some(values.map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()).collect::<Vec<_>>().join(", "))
    }

    /// Every header, lower-case names, repeated ones joined with ", ".
    pub fn header_pairs(&self) -> Vec<(String, String)> {
        self.headers.keys().map(|name| (name.as_str().to_string(), self.header(name.as_str()).unwrap_or_default())).collect()
    }

    /// Decoded query parameters (a repeated name keeps its last value), at most
    /// `MAX_PARAMS + 1` of them: one more than allowed, so a caller can still tell "too many".
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        self.query.as_deref().map(|q| bounded_pairs(q.as_bytes())).unwrap_or_default()
    }

    /// The cookies sent, the first `MAX_COOKIES` of them.
    pub fn cookie_pairs(&self) -> Vec<(String, String)> {
        self.cookies().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    /// The value of one cookie (the first one of that name), found without copying the rest.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.cookies().find(|(k, _)| *k == name).map(|(_, v)| v.to_string())
    }

    fn cookies(&self) -> impl Iterator<Item = (&str, &str)> {
        self.headers
            .get_all(http::header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| {
                let (k, v) = pair.trim().split_once('=')?;
                Some((k.trim(), v.trim().trim_matches('"')))
            })
            .take(MAX_COOKIES)
    }

    /// The form fields of an `application/x-www-form-urlencoded` body, else none; at most
    /// `MAX_PARAMS + 1`, as for the query.
    pub fn form_pairs(&self) -> Vec<(String, String)> {
        if self.is_form() {
            bounded_pairs(&self.body)
        } else {
            Vec::new()
        }
    }

    /// Whether the query or the form body has more than `MAX_PARAMS` parameters: such a
    /// request is refused before any flow sees it.
    pub fn too_many_params(&self) -> bool {
        self.query_pairs().len() > MAX_PARAMS || self.form_pairs().len() > MAX_PARAMS
    }

    fn is_form(&self) -> bool {
        self.headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.to_ascii_lowercase().starts_with("application/x-www-form-urlencoded"))
    }
}

/// Parameters a request may carry in its query, and again in its form body. No form or
/// protocol request of the engine comes near it; without a bound, every structure built from
/// attacker-chosen names grows with the body.
pub const MAX_PARAMS: usize = 100;
/// Cookies read from a request (browsers keep about 180 per site at most).
pub const MAX_COOKIES: usize = 200;

/// Decodes `application/x-www-form-urlencoded` pairs, stopping after `MAX_PARAMS + 1`.
pub fn bounded_pairs(input: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(input).take(MAX_PARAMS + 1).map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(query: &str, form: &str, cookie: &str) -> HttpRequest {
        let mut headers = http::HeaderMap::new();
        headers.insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/x-www-form-urlencoded"));
        if let Ok(v) = http::HeaderValue::from_str(cookie) {
            headers.insert(http::header::COOKIE, v);
        }
        HttpRequest { query: Some(query.to_string()), headers, body: Bytes::from(form.to_string()), ..Default::default() }
    }

    fn many(n: usize, sep: &str) -> String {
        (0..n).map(|i| format!("k{i}=v")).collect::<Vec<_>>().join(sep)
    }

    #[test]
    fn parameters_are_bounded() {
        let ok = request(&many(MAX_PARAMS, "&"), &many(MAX_PARAMS, "&"), "");
        assert!(!ok.too_many_params());
        assert_eq!(ok.form_pairs().len(), MAX_PARAMS);
        let big = many(200_000, "&");
        for r in [request(&big, "", ""), request("", &big, "")] {
            assert!(r.too_many_params());
            assert_eq!(r.query_pairs().len().max(r.form_pairs().len()), MAX_PARAMS + 1);
        }
    }

    #[test]
    fn cookies_are_bounded() {
        let r = request("", "", &format!("{}; last=1", many(10_000, "; ")));
        assert_eq!(r.cookie_pairs().len(), MAX_COOKIES);
        assert_eq!(r.cookie("k7").as_deref(), Some("v"));
        // Past the bound a cookie is not read at all.
        assert_eq!(r.cookie("last"), None);
        let r = request("", "", "a=1; b=\"2\"; a=3");
        assert_eq!(r.cookie("a").as_deref(), Some("1"));
        assert_eq!(r.cookie("b").as_deref(), Some("2"));
    }
}
