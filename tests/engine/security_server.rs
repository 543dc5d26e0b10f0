//! The HTTP server's own defences: parameter counts, the client address behind trusted
//! proxies (and only behind them), oversized declared bodies, and HSTS.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::harness::*;
use crate::identity::{browser, login, Admin, PASSWORD};

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
    for path in ["/auth/token", "/auth/oauth2/revoke", "/auth/oauth2/introspect"] {
        let started = Instant::now();
        let r =
            c.post(e.at(path)).header("content-type", "application/x-www-form-urlencoded").body(body.clone()).send().await.expect("post");
        let took = started.elapsed();
        assert_eq!(r.status(), 400, "{path}");
        let j: serde_json::Value = r.json().await.expect("json");
        assert_eq!(j["error"], "invalid_request", "{path}: {j}");
        assert!(j["error_description"].as_str().unwrap_or_default().contains("too many parameters"), "{path}: {j}");
        assert!(took < Duration::from_secs(2), "{path} took {took:?}");
    }
    // In the query too, and for pages as well as protocol endpoints.
    let query = distinct_params(2_000);
    let r = c.get(e.at(&format!("/auth/authorize?{query}"))).send().await.expect("get");
    assert_eq!(r.status(), 400);
    assert!(r.text().await.expect("text").contains("too many parameters"));
    // A hundred is still fine: the endpoint answers about the request itself.
    let hundred: String = (0..100).map(|i| format!("x{i}=1")).collect::<Vec<_>>().join("&");
    let r =
        c.post(e.at("/auth/token")).header("content-type", "application/x-www-form-urlencoded").body(hundred).send().await.expect("post");
    let j: serde_json::Value = r.json().await.expect("json");
    assert!(!j["error_description"].as_str().unwrap_or_default().contains("too many"), "{j}");
}

/// A flow that answers with the client address the engine settled on.
fn whoami_flows(db: &TestDb) -> String {
    let dir = write_dir(
        db,
        "flows",
        &[(
            "whoami.lua",
            "local http = require('assay.http')\nhttp.route('GET', '/auth/whoami', function(req) return http.text(req.ip) end)\n",
        )],
    );
    format!("dir = \"{}\"", dir.display())
}

/// A browser whose requests arrive as if a proxy had forwarded them for `addr`.
fn forwarded_browser(addr: &str) -> reqwest::Client {
    let mut h = reqwest::header::HeaderMap::new();
    h.insert("x-forwarded-for", addr.parse().expect("header value"));
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .default_headers(h)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

async fn whoami(e: &Engine, header: (&str, &str)) -> String {
    let r = client().get(e.at("/auth/whoami")).header(header.0, header.1).send().await.expect("get");
    assert_eq!(r.status(), 200);
    r.text().await.expect("text")
}

const THROTTLE: &str = "[auth.brute_force]\nfree_failures = 2\nmax_failures = 4\nip_max_failures = 4\nlockout_secs = 120\n";

/// Behind a trusted proxy, failures lock the address the proxy forwarded for, not the proxy.
pub async fn trusted_proxy_client_address(b: Backend) {
    let db = TestDb::new(b).await;
    let e = Setup::new(&db)
        .server("trusted_proxies = [\"127.0.0.1/32\", \"10.0.0.0/8\"]")
        .flows(&whoami_flows(&db))
        .extra(THROTTLE)
        .start()
        .await;
    assert_eq!(whoami(&e, ("x-forwarded-for", "6.6.6.6, 203.0.113.7, 10.0.0.2")).await, "203.0.113.7");
    assert_eq!(whoami(&e, ("x-forwarded-for", "[2001:db8::1]:4711")).await, "2001:db8::1");
    assert_eq!(whoami(&e, ("x-forwarded-for", "garbage")).await, "127.0.0.1");
    // Only the configured header (X-Forwarded-For by default) is read.
    assert_eq!(whoami(&e, ("forwarded", "for=192.0.2.1")).await, "127.0.0.1");

    let admin = Admin::new(&db, &e);
    admin.create_user("uma@example.com", Some(PASSWORD)).await;
    let spray = forwarded_browser("203.0.113.7");
    for i in 0..4 {
        let r = login(&spray, &e, &format!("spray{i}@example.com"), "guess", None).await;
        assert_eq!(r.status(), 401, "attempt {i}");
    }
    assert_eq!(login(&spray, &e, "uma@example.com", PASSWORD, None).await.status(), 429, "the sprayer's address must be locked");
    // Someone else behind the same proxy signs in as usual.
    assert_eq!(login(&forwarded_browser("198.51.100.9"), &e, "uma@example.com", PASSWORD, None).await.status(), 303);
    assert_eq!(db.count("SELECT COUNT(*) FROM auth.login_throttle WHERE key = 'ip:203.0.113.7' AND locked_until IS NOT NULL").await, 1);
    assert_eq!(db.count("SELECT COUNT(*) FROM auth.login_throttle WHERE key = 'ip:127.0.0.1'").await, 0);
    // The audit log names the forwarded address.
    assert_eq!(db.count("SELECT COUNT(*) FROM auth.audit WHERE action = 'login.failed' AND ip = '203.0.113.7'").await, 4);
    assert_eq!(db.count("SELECT COUNT(*) FROM auth.audit WHERE action = 'login.succeeded' AND ip = '198.51.100.9'").await, 1);
    assert_eq!(db.count("SELECT COUNT(*) FROM auth.audit WHERE action LIKE 'login.%' AND ip = '127.0.0.1'").await, 0);
}

/// Without trusted proxies the header is the client's to write: it changes nothing.
pub async fn spoofed_forwarding_ignored(b: Backend) {
    let db = TestDb::new(b).await;
    let e = Setup::new(&db).flows(&whoami_flows(&db)).extra(THROTTLE).start().await;
    assert_eq!(whoami(&e, ("x-forwarded-for", "203.0.113.7")).await, "127.0.0.1");
    assert_eq!(whoami(&e, ("forwarded", "for=203.0.113.7")).await, "127.0.0.1");
    let admin = Admin::new(&db, &e);
    admin.create_user("uma@example.com", Some(PASSWORD)).await;
    for i in 0..4 {
        let r = login(&forwarded_browser(&format!("203.0.113.{i}")), &e, &format!("spray{i}@example.com"), "guess", None).await;
        assert_eq!(r.status(), 401, "attempt {i}");
    }
    assert_eq!(
        login(&forwarded_browser("198.51.100.9"), &e, "uma@example.com", PASSWORD, None).await.status(),
        429,
        "a new header must not evade the lock"
    );
    assert_eq!(login(&browser(), &e, "uma@example.com", PASSWORD, None).await.status(), 429);
    assert_eq!(db.count("SELECT COUNT(*) FROM auth.login_throttle WHERE key LIKE 'ip:203.0.113.%'").await, 0);
    assert_eq!(db.count("SELECT COUNT(*) FROM auth.audit WHERE action = 'login.failed' AND ip = '127.0.0.1'").await, 4);
}

/// Reads one response head (and whatever body came with it) from a raw socket.
fn read_answer(s: &mut TcpStream) -> String {
    s.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
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
        assert!(started.elapsed() < Duration::from_secs(2), "{expect:?}: took {:?}", started.elapsed());
        assert!(answer.starts_with("HTTP/1.1 413"), "{expect:?}: {answer}");
        assert!(answer.to_ascii_lowercase().contains("connection: close"), "{answer}");
        assert!(answer.contains("payload_too_large"), "{answer}");
    }
}

/// `Strict-Transport-Security` on every answer when the public URL is https, never over http.
pub async fn hsts_header(b: Backend) {
    let db = TestDb::new(b).await;
    let e = Setup::new(&db).server("public_url = \"https://id.example.test\"").start().await;
    let c = client();
    for path in ["/healthz", "/auth/login", "/auth/nothing-here", "/auth/.well-known/openid-configuration"] {
        let r = c.get(e.at(path)).send().await.expect("get");
        let v = r.headers().get("strict-transport-security").map(|v| v.to_str().unwrap_or_default().to_string());
        assert_eq!(v.as_deref(), Some("max-age=31536000"), "{path} ({})", r.status());
    }
    drop(e);
    let db = TestDb::new(b).await;
    let e = Setup::new(&db).start().await;
    for path in ["/healthz", "/auth/login"] {
        let r = c.get(e.at(path)).send().await.expect("get");
        assert!(r.headers().get("strict-transport-security").is_none(), "{path} over http");
    }
}
