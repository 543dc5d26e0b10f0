//! The HTTP server's own defences: parameter counts, the client address behind trusted
//! proxies (and only behind them), oversized declared bodies, and HSTS.

use std::io::{Read, Write};
use std::net::TcpStream;
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

/// Reads one response head (and whatever body came with it) from a raw socket.
fn read_answer(s: &mut TcpStream) -> String {
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut buf = vec![0u8; 8192];
    let n = s.read(&mut buf).unwrap_or(0);
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

/// A declared length over the limit is refused at once, not after waiting for the body.
pub async fn declared_too_large(b: Backend) {
    let db = TestDb::new(b).await;
    let e = Setup::new(&db).start().await;
    let addr = e.url.trim_start_matches("http://").to_string();
    for expect in ["", "Expect: 100-continue\r\n"] {
        let mut s = TcpStream::connect(&addr).expect("connect");
        let head = format!(
            "POST /auth/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100000000\r\n{expect}\r\n"
        );
        s.write_all(head.as_bytes()).expect("write");
        let started = Instant::now();
        let answer = read_answer(&mut s);
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{expect:?}: took {:?}",
            started.elapsed()
        );
        assert!(answer.starts_with("HTTP/1.1 413"), "{expect:?}: {answer}");
        assert!(
            answer.to_ascii_lowercase().contains("connection: close"),
            "{answer}"
        );
        assert!(answer.contains("payload_too_large"), "{answer}");
    }
}
