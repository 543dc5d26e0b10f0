//! The page-header policy (flows/lib/page.lua): every HTML page the bundled flows answer carries
//! the same four headers, with `Referrer-Policy: no-referrer` where the URL carries a secret.

use crate::harness::*;
use crate::identity::{browser, login, Admin, PASSWORD};

const SAME_ORIGIN: &str = "same-origin";
const NO_REFERRER: &str = "no-referrer";

/// GETs `path` and checks its status, that it is HTML, and the policy's headers.
async fn check(c: &reqwest::Client, e: &Engine, path: &str, status: u16, referrer: &str) {
    let r = c.get(e.at(path)).send().await.expect("GET");
    assert_eq!(r.status().as_u16(), status, "GET {path}");
    let h = r.headers();
    let get = |name: &str| h.get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    assert!(get("content-type").starts_with("text/html"), "GET {path}: content-type {:?}", get("content-type"));
    assert_eq!(get("cache-control"), "no-store", "GET {path}: Cache-Control");
    assert_eq!(get("x-frame-options"), "DENY", "GET {path}: X-Frame-Options");
    assert_eq!(get("content-security-policy"), "frame-ancestors 'none'", "GET {path}: Content-Security-Policy");
    assert_eq!(get("referrer-policy"), referrer, "GET {path}: Referrer-Policy");
}

pub async fn every_page_has_the_header_policy(b: Backend) {
    let db = TestDb::new(b).await;
    let e = Setup::new(&db).extra("[auth.registration]\nenabled = true\n").start().await;
    let admin = Admin::new(&db, &e);
    let (_, boss) = admin
        .call("POST", "/users", Some(serde_json::json!({ "email": "boss@example.com", "password": PASSWORD, "roles": ["admin"] })))
        .await;
    let boss_id = boss["id"].as_str().expect("admin id").to_string();
    admin.create_user("plain@example.com", Some(PASSWORD)).await;

    // Signed out.
    let anon = browser();
    check(&anon, &e, "/auth/login", 200, SAME_ORIGIN).await;
    check(&anon, &e, "/auth/hello", 200, SAME_ORIGIN).await;
    check(&anon, &e, "/auth/register", 200, SAME_ORIGIN).await;
    check(&anon, &e, "/auth/recovery", 200, SAME_ORIGIN).await;
    check(&anon, &e, "/auth/recovery/reset?token=x", 200, NO_REFERRER).await;
    check(&anon, &e, "/auth/verify?token=x", 200, NO_REFERRER).await;
    check(&anon, &e, "/auth/logout", 200, SAME_ORIGIN).await;
    check(&anon, &e, "/auth/consent?consent_challenge=unknown", 400, NO_REFERRER).await;

    // Signed in without the admin role: the welcome page, and the console's refusal.
    let plain = browser();
    assert_eq!(login(&plain, &e, "plain@example.com", PASSWORD, None).await.status(), 303);
    check(&plain, &e, "/auth/welcome", 200, SAME_ORIGIN).await;
    check(&plain, &e, "/auth/logout", 200, SAME_ORIGIN).await;
    check(&plain, &e, "/auth/console/users", 403, SAME_ORIGIN).await;

    // Signed in as an admin: every console pane.
    let c = browser();
    assert_eq!(login(&c, &e, "boss@example.com", PASSWORD, None).await.status(), 303);
    check(&c, &e, "/auth/welcome", 200, SAME_ORIGIN).await;
    for path in [
        "/auth/console/users".to_string(),
        format!("/auth/console/users/{boss_id}"),
        "/auth/console/users/no-such-user".to_string(),
        "/auth/console/sessions".to_string(),
        "/auth/console/audit".to_string(),
        "/auth/console/keys".to_string(),
        "/auth/console/clients".to_string(),
    ] {
        let status = if path.ends_with("no-such-user") { 404 } else { 200 };
        check(&c, &e, &path, status, SAME_ORIGIN).await;
    }
    check(&c, &e, "/auth/console/audit?since=yesterday", 422, SAME_ORIGIN).await;
    assert!(!e.logs().contains("panicked"), "{}", e.logs());
}

/// A flow library is overridden file by file like a flow, and a new one can be required by a
/// new flow, at its top level or inside a handler (after which the handler's phase holds).
pub async fn flow_libraries_override_file_by_file(b: Backend) {
    let db = TestDb::new(b).await;
    let bundled = include_str!("../../flows/lib/page.lua");
    assert!(bundled.contains("page.REFERRER = \"same-origin\""), "lib/page.lua changed; update this test");
    let page = bundled.replace("page.REFERRER = \"same-origin\"", "page.REFERRER = \"strict-origin\"");
    let dir = write_dir(
        &db,
        "flows",
        &[
            ("lib/page.lua", page.as_str()),
            (
                "lib/greeting.lua",
                "local greeting = {}\nfunction greeting.hello(name) return \"Hello, \" .. name .. \"!\" end\nreturn greeting\n",
            ),
            (
                "greet.lua",
                concat!(
                    "local http = require('assay.http')\n",
                    "local session = require('assay.session')\n",
                    "http.route('GET', '/auth/greet', function(req)\n",
                    "  local greeting = require('lib.greeting')\n",
                    "  local who = session.load(req) and 'member' or 'stranger'\n",
                    "  local ok = pcall(function() greeting.hello = nil end)\n",
                    "  return http.text(greeting.hello(req.query.name or who) .. (ok and ' writable' or ' read-only'))\n",
                    "end)\n",
                ),
            ),
        ],
    );
    let e = Setup::new(&db).flows(&format!("dir = \"{}\"", dir.display())).start().await;
    let c = browser();
    check(&c, &e, "/auth/login", 200, "strict-origin").await;
    check(&c, &e, "/auth/verify?token=x", 200, NO_REFERRER).await;
    for _ in 0..3 {
        let r = c.get(e.at("/auth/greet")).send().await.expect("GET");
        assert_eq!(r.status(), 200, "{}", e.logs());
        assert_eq!(r.text().await.expect("body"), "Hello, stranger! read-only");
    }
    // Libraries declare no routes.
    assert_eq!(c.get(e.at("/auth/lib/greeting")).send().await.expect("GET").status(), 404);
}
