//! The HTTP server's own defences: parameter counts, the client address behind trusted
//! proxies (and only behind them), oversized declared bodies, and HSTS.

use std::time::{Duration, Instant};

use crate::harness::*;

/// One distinct `kN=v` pair after another, about `bytes` long.
fn distinct_params(bytes: usize) -> String {
    let mut s = String::with_capacity(bytes + 16);
    let mut i = 0;
    while s.len() < bytes {
        s.push_str(&format!("k{i}=v&"));
        i += 1;
    }
    s
}

/// A megabyte of distinct parameters used to cost the token endpoint seconds of CPU per
/// request (a quadratic repeat check) before the client was even authenticated.
pub async fn too_many_parameters(b: Backend) {
    let db = TestDb::new(b).await;
    let e = Setup::new(&db).start().await;
    let c = client();
    let body = distinct_params(1_000_000);
    for path in [
        "/auth/token",
        "/auth/oauth2/revoke",
        "/auth/oauth2/introspect",
    ] {
        let started = Instant::now();
        let r = c
            .post(e.at(path))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.clone())
            .send()
            .await
            .expect("post");
        let took = started.elapsed();
        assert_eq!(r.status(), 400, "{path}");
        let j: serde_json::Value = r.json().await.expect("json");
        assert_eq!(j["error"], "invalid_request", "{path}: {j}");
        assert!(
            j["error_description"]
                .as_str()
                .unwrap_or_default()
                .contains("too many parameters"),
            "{path}: {j}"
        );
        assert!(took < Duration::from_secs(2), "{path} took {took:?}");
    }
    // In the query too, and for pages as well as protocol endpoints.
    let query = distinct_params(2_000);
    let r = c
        .get(e.at(&format!("/auth/authorize?{query}")))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 400);
    assert!(r
        .text()
        .await
        .expect("text")
        .contains("too many parameters"));
    // A hundred is still fine: the endpoint answers about the request itself.
    let hundred: String = (0..100)
        .map(|i| format!("x{i}=1"))
        .collect::<Vec<_>>()
        .join("&");
    let r = c
        .post(e.at("/auth/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(hundred)
        .send()
        .await
        .expect("post");
    let j: serde_json::Value = r.json().await.expect("json");
    assert!(
        !j["error_description"]
            .as_str()
            .unwrap_or_default()
            .contains("too many"),
        "{j}"
    );
}
