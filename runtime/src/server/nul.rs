//! NUL bytes are refused at the door. No identifier, form field or JSON string this engine
//! reads may hold one, and PostgreSQL refuses them in `text` (the review got a 500 from nine
//! unauthenticated endpoints and the admin list filters that way). One linear scan of the raw
//! path, query and body, before any flow runs, answers 400 instead.

/// What carries a NUL byte, if anything does: the path, the query, or the body (a form body
/// percent-encoded or raw, a JSON body as the escape `\u0000`).
pub fn nul_in(path: &str, query: Option<&str>, content_type: &str, body: &[u8]) -> Option<&'static str> {
    if has_encoded_nul(path.as_bytes()) {
        return Some("the path");
    }
    if query.is_some_and(|q| has_encoded_nul(q.as_bytes())) {
        return Some("the query");
    }
    // As loosely as any reader of the body matches the type (they test a prefix), so that no
    // spelling of it slips a body past this check and into a parser.
    let ct = content_type.to_ascii_lowercase();
    if ct.contains("x-www-form-urlencoded") && has_encoded_nul(body) {
        return Some("the form body");
    }
    if ct.contains("json") && has_json_nul(body) {
        return Some("the JSON body");
    }
    None
}

/// A raw NUL, or `%00` as it decodes in a URL or form.
fn has_encoded_nul(b: &[u8]) -> bool {
    b.contains(&0) || b.windows(3).any(|w| w == b"%00")
}

/// A raw NUL, or the JSON escape `\u0000` (an escaped backslash before `u0000` is text, not
/// an escape: the run of backslashes before the `u` must be odd).
fn has_json_nul(b: &[u8]) -> bool {
    if b.contains(&0) {
        return true;
    }
    let mut backslashes = 0usize;
    for (i, &c) in b.iter().enumerate() {
        if c == b'\\' {
            backslashes += 1;
            continue;
        }
        if c == b'u' && backslashes % 2 == 1 && b.get(i + 1..i + 5) == Some(b"0000") {
            return true;
        }
        backslashes = 0;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_nul_where_it_decodes() {
        let form = "application/x-www-form-urlencoded";
        assert_eq!(nul_in("/auth/x%00", None, "", b""), Some("the path"));
        assert_eq!(nul_in("/auth/x", Some("q=a%00b"), "", b""), Some("the query"));
        assert_eq!(nul_in("/auth/x", None, form, b"email=a%00@b"), Some("the form body"));
        assert_eq!(nul_in("/auth/x", None, "Application/X-WWW-Form-UrlencodedX", b"client_id=a%00"), Some("the form body"));
        assert_eq!(nul_in("/auth/x", None, "application/json; charset=utf-8", br#"{"q":"a\u0000"}"#), Some("the JSON body"));
        assert_eq!(nul_in("/auth/x", None, "application/json", b"{\"q\":\"a\0\"}"), Some("the JSON body"));
    }

    #[test]
    fn leaves_lookalikes_alone() {
        assert_eq!(nul_in("/auth/x", Some("q=%2500"), "", b""), None);
        assert_eq!(nul_in("/auth/x", None, "application/json", br#"{"q":"a\\u0000"}"#), None);
        assert_eq!(nul_in("/auth/x", None, "application/json", br#"{"q":"a\\\u0000"}"#), Some("the JSON body"));
        assert_eq!(nul_in("/auth/x", None, "text/plain", b"%00"), None);
        assert_eq!(nul_in("/auth/x", None, "application/json", br#"{"q":"\u00001"}"#), Some("the JSON body"));
    }
}
