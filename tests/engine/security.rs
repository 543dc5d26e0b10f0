//! Regression cases for the independent security review's findings (the stall, CSRF, input
//! bounds, recovery and registration, NUL bytes, the hashing queue, login atomicity). Each
//! one failed on the engine the review attacked.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::harness::*;
use crate::identity::{browser, csrf_in, login, page, post_form, set_cookie, Admin, SmtpSink, PASSWORD};

/// A field of `n` bytes that is mostly inner whitespace: what made the old `trim` quadratic.
fn spaced(n: usize) -> String {
    let mut s = String::from("a");
    s.push_str(&" ".repeat(n - 2));
    s.push('b');
    s
}

/// Item 1 and 4: oversized fields are refused before any pattern, throttle, hash or audit row
/// sees them, quickly, while the engine stays responsive.
pub async fn oversized_fields_are_refused_at_once(b: Backend) {
    let db = TestDb::new(b).await;
    let e = Setup::new(&db).start().await;
    let c = browser();
    let (_, html) = page(&c, &e.at("/auth/login")).await;
    let token = csrf_in(&html);
    let audit_before = db.count("SELECT COUNT(*) FROM auth.audit").await;

    for (path, field) in [("/auth/login", "email"), ("/auth/recovery", "email")] {
        for n in [40_000, 900_000] {
            let big = spaced(n);
            let started = Instant::now();
            let readyz = e.at("/readyz");
            let url = e.at(path);
            let fields = [("csrf_token", token.as_str()), (field, big.as_str()), ("password", "x")];
            let post = post_form(&c, &url, &fields);
            let probe = async {
                tokio::time::sleep(Duration::from_millis(50)).await;
                let t = Instant::now();
                let r = client().get(&readyz).send().await.expect("readyz");
                (r.status().as_u16(), t.elapsed())
            };
            let (r, (ready, ready_took)) = tokio::join!(post, probe);
            let status = r.status().as_u16();
            let body = r.text().await.expect("body");
            assert_eq!(status, 400, "{path} with a {n}-byte {field}: {body}");
            assert!(body.contains("too long"), "{body}");
            assert!(started.elapsed() < Duration::from_secs(3), "{path}: a {n}-byte field took {:?}", started.elapsed());
            assert_eq!(ready, 200);
            assert!(ready_took < Duration::from_secs(1), "/readyz took {ready_took:?} during the post");
        }
    }
    // Nothing was counted or logged for them.
    assert_eq!(db.count("SELECT COUNT(*) FROM auth.login_throttle").await, 0);
    assert_eq!(db.count("SELECT COUNT(*) FROM auth.audit").await, audit_before);

    // The same holds for a caller of users.authenticate that does not bound the field first:
    // the engine refuses the identifier itself, and every audit field is capped.
    let admin = Admin::new(&db, &e);
    let (status, _) = admin.call("POST", "/users", Some(json!({ "email": format!("{}@example.com", "x".repeat(300)) }))).await;
    assert_eq!(status, 422);
    let flows = write_dir(
        &db,
        "flows",
        &[(
            "probe.lua",
            r#"
local http = require("assay.http")
local users = require("assay.users")
local audit = require("assay.audit")
http.route("POST", "/auth/probe", function(req)
  local _, err = users.authenticate({ email = req.body, password = "x" })
  assert(audit.append({ action = "probe.long", actor = req.body, details = { text = req.body } }))
  return http.text(tostring(err))
end)
"#,
        )],
    );
    drop(e);
    let e = Setup::new(&db).flows(&format!("dir = \"{}\"", flows.display())).start().await;
    let r = client().post(e.at("/auth/probe")).body("y".repeat(500_000)).send().await.expect("POST");
    let text = r.text().await.expect("body");
    assert!(text.starts_with("invalid: email"), "{text}");
    assert_eq!(db.count("SELECT COUNT(*) FROM auth.login_throttle").await, 0);
    assert_eq!(
        db.count("SELECT COUNT(*) FROM auth.audit WHERE action = 'probe.long' AND LENGTH(actor) <= 512 AND LENGTH(details) <= 8192").await,
        1
    );
}

/// Item 3: with a session, only that session's CSRF token counts; the admin API reads JSON
/// bodies only; on https the cookies are `__Host-` cookies.
pub async fn csrf_needs_the_sessions_own_token(b: Backend) {
    let db = TestDb::new(b).await;
    let e = Setup::new(&db).start().await;
    let admin = Admin::new(&db, &e);
    let (_, boss) =
        admin.call("POST", "/users", Some(json!({ "email": "boss@example.com", "password": PASSWORD, "roles": ["admin"] }))).await;
    assert!(boss["id"].is_string(), "{boss}");
    let victim = browser();
    let signed_in = login(&victim, &e, "boss@example.com", PASSWORD, None).await;
    assert_eq!(signed_in.status(), 303);
    let session_pair = set_cookie(&signed_in, "assay_session").expect("session cookie").split(';').next().expect("pair").to_string();
    let (_, console) = page(&victim, &e.at("/auth/console/users")).await;
    let session_token = csrf_in(&console);

    // The attacker fetches an anonymous cookie and its token in a browser of their own ...
    let attacker = browser();
    let r = attacker.get(e.at("/auth/login")).send().await.expect("GET");
    let planted = set_cookie(&r, "assay_csrf").expect("anonymous csrf cookie").split(';').next().expect("pair").to_string();
    let anon_token = csrf_in(&r.text().await.expect("body"));
    // ... and plants the cookie beside the admin's session (a sibling subdomain can).
    let session_cookie = format!("{session_pair}; {planted}");
    let forged_console = victim
        .post(e.at("/auth/console/users"))
        .header("cookie", &session_cookie)
        .form(&[("csrf_token", anon_token.as_str()), ("email", "mallory@example.com"), ("password", PASSWORD), ("admin", "1")])
        .send()
        .await
        .expect("POST");
    assert_eq!(forged_console.status(), 403, "the console took an anonymous token with a session");
    let forged_api = victim
        .post(e.at("/auth/admin/auth/users"))
        .header("cookie", &session_cookie)
        .header("x-csrf-token", &anon_token)
        .header("content-type", "application/json")
        .body(json!({ "email": "mallory2@example.com", "roles": ["admin"] }).to_string())
        .send()
        .await
        .expect("POST");
    assert_eq!(forged_api.status(), 403, "the admin API took an anonymous token with a session");
    // A body that is not JSON is refused, even with the right token (no preflight guards it).
    let text_plain = victim
        .post(e.at("/auth/admin/auth/users"))
        .header("x-csrf-token", &session_token)
        .header("content-type", "text/plain")
        .body(json!({ "email": "mallory3@example.com", "roles": ["admin"] }).to_string())
        .send()
        .await
        .expect("POST");
    assert_eq!(text_plain.status(), 415);
    let body: Value = text_plain.json().await.expect("json");
    assert_eq!(body["error"], "unsupported_media_type");
    assert_eq!(db.count("SELECT COUNT(*) FROM auth.users WHERE email LIKE 'mallory%'").await, 0);
    // The session's own token still works.
    let ok = victim
        .post(e.at("/auth/admin/auth/users"))
        .header("x-csrf-token", &session_token)
        .json(&json!({ "email": "helper@example.com" }))
        .send()
        .await
        .expect("POST");
    assert_eq!(ok.status(), 201);
    drop(e);

    // On https, every cookie the engine sets is a __Host- cookie.
    let e = Setup::new(&db).server("public_url = \"https://id.example.test\"").start().await;
    let r = client().get(e.at("/auth/login")).send().await.expect("GET");
    let cookies: Vec<String> = r.headers().get_all("set-cookie").iter().map(|v| v.to_str().expect("ascii").to_string()).collect();
    assert!(!cookies.is_empty());
    for c in &cookies {
        assert!(c.starts_with("__Host-"), "{c}");
        assert!(c.contains("Secure") && c.contains("Path=/") && !c.contains("Domain"), "{c}");
    }
}

/// Items 7 and 8: recovery is rate limited per address; registration answers the same for a
/// new and a taken address and mails the owner instead.
pub async fn recovery_is_throttled(b: Backend) {
    let db = TestDb::new(b).await;
    let sink = SmtpSink::start(&db);
    let e = Setup::new(&db).extra(&sink.toml()).start().await;
    let admin = Admin::new(&db, &e);
    admin.create_user("rita@example.com", Some(PASSWORD)).await;
    let c = browser();
    let (_, html) = page(&c, &e.at("/auth/recovery")).await;
    let token = csrf_in(&html);
    // Past five an hour, an address gets no more mail, and the page does not change.
    let mut first_body = None;
    for i in 0..7 {
        let r = post_form(&c, &e.at("/auth/recovery"), &[("csrf_token", &token), ("email", "rita@example.com")]).await;
        assert_eq!(r.status(), 200, "request {i}");
        let body = r.text().await.expect("body");
        let first = first_body.get_or_insert_with(|| body.clone());
        assert_eq!(*first, body);
    }
    sink.wait_for("rita@example.com", 4).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(sink.count_to("rita@example.com"), 5, "a mailbox can be sent at most five links an hour");
    // Past twenty an hour from one client, requests are refused.
    for i in 7..20 {
        let r = post_form(&c, &e.at("/auth/recovery"), &[("csrf_token", &token), ("email", &format!("ghost{i}@example.com"))]).await;
        assert_eq!(r.status(), 200, "request {i}");
    }
    let r = post_form(&c, &e.at("/auth/recovery"), &[("csrf_token", &token), ("email", "ghost@example.com")]).await;
    assert_eq!(r.status(), 429);
    let wait: u64 = r.headers().get("retry-after").expect("Retry-After").to_str().expect("ascii").parse().expect("seconds");
    assert!(wait > 0 && wait <= 3600);
    // The limit is shown to administrators as a lock.
    let (_, list) = admin.call("GET", "/login-throttles", None).await;
    assert!(
        list["entries"]
            .as_array()
            .expect("entries")
            .iter()
            .any(|c| c["key"].as_str().is_some_and(|k| k.starts_with("recovery:ip:")) && c["locked_until"].is_string()),
        "{list}"
    );
    assert_eq!(sink.count_to("ghost@example.com"), 0);
}

/// Item 11: a NUL byte anywhere a value is read is a 400 on both backends, never a 500.
pub async fn nul_bytes_are_refused(b: Backend) {
    let db = TestDb::new(b).await;
    let e = Setup::new(&db).start().await;
    let admin = Admin::new(&db, &e);
    let c = client();
    let form = "application/x-www-form-urlencoded";
    let probes: Vec<(&str, &str, &str, String)> = vec![
        ("POST", "/auth/login", form, "email=a%00b%40example.com&password=x&csrf_token=x".into()),
        ("POST", "/auth/recovery", form, "email=a%00b%40example.com&csrf_token=x".into()),
        ("POST", "/auth/register", form, "email=a%00b%40example.com&csrf_token=x".into()),
        ("POST", "/auth/token", form, "grant_type=client_credentials&client_id=a%00b&client_secret=x".into()),
        ("POST", "/auth/oauth2/introspect", form, "token=a%00b&client_id=a%00&client_secret=x".into()),
        ("POST", "/auth/oauth2/revoke", form, "token=a%00b&client_id=a%00".into()),
        ("POST", "/auth/verify", form, "token=a%00b&csrf_token=x".into()),
        ("GET", "/auth/authorize?client_id=a%00b&response_type=code", "", String::new()),
        ("GET", "/auth/oauth2/sessions/logout?client_id=a%00b", "", String::new()),
        ("GET", "/auth/userinfo?access_token=a%00b", "", String::new()),
    ];
    for (method, path, ct, body) in &probes {
        let mut rb = c.request(method.parse().expect("method"), e.at(path));
        if !ct.is_empty() {
            rb = rb.header("content-type", *ct).body(body.clone());
        }
        let r = rb.send().await.expect("request");
        assert_eq!(r.status().as_u16(), 400, "{method} {path}");
    }
    // However the form's type is spelled, and through Basic authentication too.
    let r = c
        .post(e.at("/auth/token"))
        .header("content-type", "application/x-www-form-urlencodedX")
        .body("grant_type=client_credentials&client_id=a%00")
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status().as_u16(), 400);
    use base64::Engine;
    let basic = base64::engine::general_purpose::STANDARD.encode("a%00b:secret");
    let r = c
        .post(e.at("/auth/token"))
        .header("authorization", format!("Basic {basic}"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status().as_u16(), 401, "{}", r.text().await.unwrap_or_default());
    for filter in ["/users?q=a%00", "/audit?actor=a%00", "/sessions?user_id=a%00", "/users/a%00b"] {
        let (status, body) = admin.call("GET", filter, None).await;
        assert_eq!(status, 400, "{filter}: {body}");
    }
    let (status, body) = admin.call("POST", "/users", Some(json!({ "email": "a\u{0}b@example.com" }))).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(db.count("SELECT COUNT(*) FROM auth.users").await, 0);
    // The engine is fine afterwards.
    assert_eq!(c.get(e.at("/readyz")).send().await.expect("readyz").status(), 200);
}

/// Item 15: a sign-in's audit entry and its session are written together; the entry names the
/// session it made.
pub async fn login_audit_names_its_session(b: Backend) {
    let db = TestDb::new(b).await;
    let e = Setup::new(&db).start().await;
    let admin = Admin::new(&db, &e);
    admin.create_user("sam@example.com", Some(PASSWORD)).await;
    for _ in 0..3 {
        assert_eq!(login(&browser(), &e, "sam@example.com", PASSWORD, None).await.status(), 303);
    }
    let (_, audit) = admin.call("GET", "/audit?action=login.succeeded", None).await;
    let entries = audit["entries"].as_array().expect("entries");
    assert_eq!(entries.len(), 3, "{audit}");
    for entry in entries {
        let sid = entry["details"]["session_id"].as_str().unwrap_or_else(|| panic!("no session_id in {entry}"));
        assert_eq!(db.count(&format!("SELECT COUNT(*) FROM auth.sessions WHERE id = '{sid}'")).await, 1, "{entry}");
    }
}

/// Item 14: a burst of sign-ins past the hashing queue is answered 503 with Retry-After at
/// once, never 500, and the engine answers normally afterwards.
pub async fn login_burst_gets_503_not_500(b: Backend) {
    let db = TestDb::new(b).await;
    let e = Setup::new(&db)
        .extra("[auth.password]\nmemory_kib = 65536\niterations = 4\nmax_concurrent_hashes = 1\nmax_queued_hashes = 2\n")
        .start()
        .await;
    let admin = Admin::new(&db, &e);
    admin.create_user("burst@example.com", Some(PASSWORD)).await;
    let mut forms = Vec::new();
    for _ in 0..16 {
        let c = browser();
        let (_, html) = page(&c, &e.at("/auth/login")).await;
        forms.push((c, csrf_in(&html)));
    }
    let posts = forms.iter().enumerate().map(|(i, (c, token))| {
        let url = e.at("/auth/login");
        let email = format!("nobody{i}@example.com");
        async move {
            let r = c
                .post(url)
                .form(&[("csrf_token", token.as_str()), ("email", email.as_str()), ("password", "wrong password")])
                .send()
                .await
                .expect("POST");
            (r.status().as_u16(), r.headers().get("retry-after").map(|v| v.to_str().unwrap_or_default().to_string()))
        }
    });
    let answers = futures_util::future::join_all(posts).await;
    let busy = answers.iter().filter(|(s, _)| *s == 503).count();
    assert!(answers.iter().all(|(s, _)| *s == 401 || *s == 503), "{answers:?}");
    assert!(busy > 0, "no request was turned away: {answers:?}");
    let retry_after_ok = |ra: &Option<String>| ra.as_deref().and_then(|v| v.parse::<u64>().ok()).is_some_and(|n| (1..=60).contains(&n));
    assert!(answers.iter().filter(|(s, _)| *s == 503).all(|(_, ra)| retry_after_ok(ra)), "{answers:?}");
    // The queue drains: a sign-in afterwards works.
    assert_eq!(login(&browser(), &e, "burst@example.com", PASSWORD, None).await.status(), 303);
}
