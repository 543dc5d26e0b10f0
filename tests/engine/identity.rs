//! Identity end to end over HTTP: login, logout, sessions, registration, recovery and
//! verification through a real SMTP sink, brute-force throttling, the admin API, and the
//! `users create` CLI. Browsers are reqwest clients with a cookie jar and no redirects.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::harness::*;

pub(crate) const PASSWORD: &str = "correct horse battery staple";

/// A browser: a cookie jar, no automatic redirects.
pub(crate) fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

/// The value of the hidden `csrf_token` field in a page.
pub(crate) fn csrf_in(html: &str) -> String {
    let at = html.find("name=\"csrf_token\"").unwrap_or_else(|| panic!("no csrf_token field in:\n{html}"));
    let rest = &html[at..];
    let v = rest.find("value=\"").expect("csrf value") + 7;
    rest[v..v + rest[v..].find('"').expect("end quote")].to_string()
}

pub(crate) async fn page(c: &reqwest::Client, url: &str) -> (u16, String) {
    let r = c.get(url).send().await.expect("GET");
    let status = r.status().as_u16();
    (status, r.text().await.expect("body"))
}

pub(crate) async fn post_form(c: &reqwest::Client, url: &str, form: &[(&str, &str)]) -> reqwest::Response {
    c.post(url).form(form).send().await.expect("POST")
}

pub(crate) fn location(r: &reqwest::Response) -> String {
    r.headers().get("location").map(|v| v.to_str().expect("ascii").to_string()).unwrap_or_default()
}

pub(crate) fn set_cookie(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(str::to_string)
}

pub(crate) fn cookie_value(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap_or_default().split_once('=').map(|(_, v)| v.to_string()).unwrap_or_default()
}

/// Logs in through the real form; returns the POST's response.
pub(crate) async fn login(c: &reqwest::Client, e: &Engine, email: &str, password: &str, return_to: Option<&str>) -> reqwest::Response {
    let (status, html) = page(c, &e.at("/auth/login")).await;
    assert_eq!(status, 200, "{html}");
    let token = csrf_in(&html);
    let mut form = vec![("csrf_token", token.as_str()), ("email", email), ("password", password)];
    if let Some(r) = return_to {
        form.push(("return_to", r));
    }
    post_form(c, &e.at("/auth/login"), &form).await
}

/// The engine's admin API with its generated key.
pub(crate) struct Admin {
    c: reqwest::Client,
    base: String,
    key: String,
}

impl Admin {
    pub(crate) fn new(db: &TestDb, e: &Engine) -> Admin {
        let key = std::fs::read_to_string(db.data_dir().join("admin-key")).expect("admin key").trim().to_string();
        Admin { c: client(), base: e.at("/auth/admin/auth"), key }
    }
    pub(crate) async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let url = format!("{}{path}", self.base);
        let mut rb = self.c.request(method.parse().expect("method"), url).bearer_auth(&self.key);
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let r = rb.send().await.expect("admin call");
        let status = r.status().as_u16();
        let text = r.text().await.expect("body");
        (status, if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}")) })
    }
    pub(crate) async fn create_user(&self, email: &str, password: Option<&str>) -> Value {
        let mut body = json!({ "email": email, "display_name": "Test User" });
        if let Some(p) = password {
            body["password"] = json!(p);
        }
        let (status, user) = self.call("POST", "/users", Some(body)).await;
        assert_eq!(status, 201, "{user}");
        user
    }
}

/// A real SMTP server on loopback (aiosmtpd) writing each message to a folder.
pub struct SmtpSink {
    child: Child,
    pub port: u16,
    dir: PathBuf,
}

impl SmtpSink {
    pub fn start(db: &TestDb) -> SmtpSink {
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port();
        let dir = db.dir.path().join("mail");
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/support/smtp_sink.py");
        let mut child = Command::new("python3")
            .args([script, &port.to_string(), &dir.display().to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 (the SMTP sink needs aiosmtpd: pip install aiosmtpd)");
        let mut line = String::new();
        use std::io::BufRead;
        std::io::BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("sink output");
        assert_eq!(line.trim(), "ready", "the SMTP sink did not start (pip install aiosmtpd)");
        SmtpSink { child, port, dir }
    }

    pub fn toml(&self) -> String {
        format!("[auth.smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\nfrom = \"assay <no-reply@example.test>\"\n", self.port)
    }

    /// Every message received so far, in order.
    pub fn messages(&self) -> Vec<String> {
        let mut names: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .map(|d| d.filter_map(Result::ok).map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "eml")).collect())
            .unwrap_or_default();
        names.sort();
        names.iter().map(|p| decode_mail(&std::fs::read_to_string(p).expect("read mail"))).collect()
    }

    /// The newest message to `to`, waiting up to 10 s for it.
    pub async fn wait_for(&self, to: &str, already: usize) -> String {
        let started = Instant::now();
        loop {
            let mine: Vec<String> = self.messages().into_iter().filter(|m| m.contains(&format!("X-Envelope-To: {to}"))).collect();
            if mine.len() > already {
                return mine.last().cloned().expect("one");
            }
            assert!(started.elapsed() < Duration::from_secs(10), "no mail to {to} arrived");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn count_to(&self, to: &str) -> usize {
        self.messages().iter().filter(|m| m.contains(&format!("X-Envelope-To: {to}"))).count()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Undoes quoted-printable soft breaks and `=XX` escapes, enough to find links in a message.
fn decode_mail(raw: &str) -> String {
    let joined = raw.replace("=\r\n", "").replace("=\n", "");
    let mut out = String::with_capacity(joined.len());
    let bytes = joined.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' && i + 2 < bytes.len() {
            if let Ok(v) = u8::from_str_radix(&joined[i + 1..i + 3], 16) {
                out.push(v as char);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i] as char);
        i += 1;
    }
    out
}

/// The first URL in `mail` containing `needle`.
fn link_in(mail: &str, needle: &str) -> String {
    let at = mail.find(needle).unwrap_or_else(|| panic!("no {needle} link in:\n{mail}"));
    let start = mail[..at].rfind("http").expect("link start");
    let end = mail[start..].find(|c: char| c.is_whitespace() || c == '"' || c == '<').map(|n| start + n).unwrap_or(mail.len());
    mail[start..end].to_string()
}

fn path_of(url: &str) -> String {
    let after_scheme = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    after_scheme.find('/').map(|i| after_scheme[i..].to_string()).unwrap_or_else(|| "/".into())
}

fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

/// Login: generic failures, CSRF, cookie attributes, hashed session ids, no fixation,
/// return_to kept on this origin, logout, and a disabled user refused.
pub async fn login_and_logout(b: Backend) {
    let db = TestDb::new(b).await;
    let e = Setup::new(&db).start().await;
    let admin = Admin::new(&db, &e);
    let user = admin.create_user("Ann@Example.com", Some(PASSWORD)).await;
    let user_id = user["id"].as_str().expect("id").to_string();

    // The form: labelled inputs, a CSRF token bound to an anonymous cookie.
    let c = browser();
    let r = c.get(e.at("/auth/login")).send().await.expect("GET");
    assert_eq!(r.status(), 200);
    let anon = set_cookie(&r, "assay_csrf").expect("an anonymous CSRF cookie");
    assert!(anon.contains("HttpOnly") && anon.contains("SameSite=Lax"), "{anon}");
    let html = r.text().await.expect("body");
    assert!(html.contains("<label for=\"email\"") && html.contains("<label for=\"password\""), "{html}");
    let token = csrf_in(&html);

    // No token, a wrong token, a token from another browser: refused, nothing logged in.
    for form in [
        vec![("email", "ann@example.com"), ("password", PASSWORD)],
        vec![("csrf_token", "forged"), ("email", "ann@example.com"), ("password", PASSWORD)],
    ] {
        let r = post_form(&c, &e.at("/auth/login"), &form).await;
        assert_eq!(r.status(), 403);
        assert!(set_cookie(&r, "assay_session").is_none());
    }
    let other = browser();
    let r = post_form(&other, &e.at("/auth/login"), &[("csrf_token", &token), ("email", "ann@example.com"), ("password", PASSWORD)]).await;
    assert_eq!(r.status(), 403, "a token bound to another browser's cookie must fail");

    // Wrong password and unknown user: the same status and message.
    let wrong = login(&c, &e, "ann@example.com", "not the password", None).await;
    assert_eq!(wrong.status(), 401);
    let wrong_body = wrong.text().await.expect("body");
    let unknown = login(&c, &e, "nobody@example.com", "not the password", None).await;
    assert_eq!(unknown.status(), 401);
    let unknown_body = unknown.text().await.expect("body");
    assert!(wrong_body.contains("Incorrect email or password."), "{wrong_body}");
    assert!(unknown_body.contains("Incorrect email or password."), "{unknown_body}");
    assert!(!unknown_body.to_lowercase().contains("no such user") && !unknown_body.contains("not found"));

    // A good login from a browser carrying a session id it was handed: a new id, the old one dead.
    let first = login(&c, &e, "ANN@example.com", PASSWORD, None).await;
    assert_eq!(first.status(), 303);
    let first_cookie = set_cookie(&first, "assay_session").expect("session cookie");
    assert!(
        first_cookie.contains("HttpOnly") && first_cookie.contains("SameSite=Lax") && first_cookie.contains("Path=/"),
        "{first_cookie}"
    );
    assert!(!first_cookie.contains("Secure"), "no Secure on an http public URL: {first_cookie}");
    let first_id = cookie_value(&first_cookie);
    assert!(first_id.len() >= 43, "256-bit id: {first_id}");
    assert_eq!(location(&first), "/auth/welcome");
    assert_eq!(db.count(&format!("SELECT COUNT(*) FROM auth.sessions WHERE token_hash = '{}'", sha256_hex(&first_id))).await, 1);
    assert_eq!(db.count(&format!("SELECT COUNT(*) FROM auth.sessions WHERE token_hash = '{first_id}' OR id = '{first_id}'")).await, 0);
    let (status, html) = page(&c, &e.at("/auth/welcome")).await;
    assert_eq!(status, 200);
    assert!(html.contains("Ann@Example.com"), "{html}");

    let second = login(&c, &e, "ann@example.com", PASSWORD, Some("/auth/welcome?from=login")).await;
    assert_eq!(second.status(), 303);
    assert_eq!(location(&second), "/auth/welcome?from=login");
    let second_id = cookie_value(&set_cookie(&second, "assay_session").expect("new cookie"));
    assert_ne!(first_id, second_id, "a login must issue a new session id");
    let replay = client().get(e.at("/auth/welcome")).header("cookie", format!("assay_session={first_id}")).send().await.expect("GET");
    assert_eq!(replay.status(), 303, "the pre-login session id must be dead");

    // return_to must stay on this origin.
    for evil in ["//evil.example/x", "https://evil.example/", "/\\evil.example", "javascript:alert(1)"] {
        let r = login(&browser(), &e, "ann@example.com", PASSWORD, Some(evil)).await;
        assert_eq!(r.status(), 303);
        assert_eq!(location(&r), "/auth/welcome", "return_to {evil:?} was followed");
    }

    // Logout: CSRF-checked POST, then the session is gone server-side too.
    let (_, html) = page(&c, &e.at("/auth/logout")).await;
    let token = csrf_in(&html);
    let r = post_form(&c, &e.at("/auth/logout"), &[("csrf_token", "wrong")]).await;
    assert_eq!(r.status(), 403);
    let r = post_form(&c, &e.at("/auth/logout"), &[("csrf_token", &token)]).await;
    assert_eq!(r.status(), 303);
    assert!(set_cookie(&r, "assay_session").expect("cleared").contains("Max-Age=0"));
    let replay = client().get(e.at("/auth/welcome")).header("cookie", format!("assay_session={second_id}")).send().await.expect("GET");
    assert_eq!(replay.status(), 303, "a logged-out session id must be dead");

    // A disabled user: the right password is refused with the same message, live sessions end.
    let c = browser();
    assert_eq!(login(&c, &e, "ann@example.com", PASSWORD, None).await.status(), 303);
    let (status, _) = admin.call("PATCH", &format!("/users/{user_id}"), Some(json!({ "disabled": true }))).await;
    assert_eq!(status, 200);
    let (status, _) = page(&c, &e.at("/auth/welcome")).await;
    assert_eq!(status, 303, "a disabled user's session must stop working");
    let r = login(&browser(), &e, "ann@example.com", PASSWORD, None).await;
    assert_eq!(r.status(), 401);
    assert!(r.text().await.expect("body").contains("Incorrect email or password."));

    // Every step is in the audit log.
    for action in ["login.failed", "login.succeeded", "login.refused_disabled"] {
        assert!(db.count(&format!("SELECT COUNT(*) FROM auth.audit WHERE action = '{action}'")).await >= 1, "{action} not audited");
    }
    // And the audit log refuses to be rewritten.
    let c2 = db.count("SELECT COUNT(*) FROM auth.audit").await;
    db.try_exec("DELETE FROM auth.audit").await.expect_err("audit rows must not be deletable");
    db.try_exec("UPDATE auth.audit SET action = 'x'").await.expect_err("audit rows must not be updatable");
    assert_eq!(db.count("SELECT COUNT(*) FROM auth.audit").await, c2);
}

/// Self-service registration is off by default; on, it sends a verification link.
pub async fn registration_and_verification(b: Backend) {
    let db = TestDb::new(b).await;
    {
        let e = Setup::new(&db).start().await;
        assert_eq!(page(&browser(), &e.at("/auth/register")).await.0, 404);
        assert_eq!(client().post(e.at("/auth/register")).form(&[("email", "x@example.com")]).send().await.expect("POST").status(), 404);
    }
    let sink = SmtpSink::start(&db);
    let e = Setup::new(&db).extra(&format!("[auth.registration]\nenabled = true\n{}", sink.toml())).start().await;
    let c = browser();
    let (status, html) = page(&c, &e.at("/auth/register")).await;
    assert_eq!(status, 200);
    let token = csrf_in(&html);
    // Mismatched confirmation and weak passwords are refused before anything is stored.
    let form = |pw: &'static str, confirm: &'static str| {
        vec![
            ("csrf_token", token.clone()),
            ("email", "new@example.com".into()),
            ("password", pw.into()),
            ("password_confirm", confirm.into()),
            ("display_name", "New".into()),
        ]
    };
    let field_names = html.contains("name=\"password_confirm\"");
    assert!(field_names, "register form fields changed:\n{html}");
    let r = c.post(e.at("/auth/register")).form(&form("abc", "abc")).send().await.expect("POST");
    assert_eq!(r.status(), 422);
    let r = c.post(e.at("/auth/register")).form(&form(PASSWORD, "something else")).send().await.expect("POST");
    assert_eq!(r.status(), 422);
    assert_eq!(db.count("SELECT COUNT(*) FROM auth.users").await, 0);
    // A new address and one that has an account get the same page, and neither signs in.
    let r = c.post(e.at("/auth/register")).form(&form(PASSWORD, PASSWORD)).send().await.expect("POST");
    assert_eq!(r.status(), 200);
    assert!(set_cookie(&r, "assay_session").is_none(), "registration must not sign in");
    let first = r.text().await.expect("body");
    assert!(first.contains("Check your email"), "{first}");
    let r = c.post(e.at("/auth/register")).form(&form(PASSWORD, PASSWORD)).send().await.expect("POST");
    assert_eq!(r.status(), 200, "a second account with the same email gets the same answer");
    assert!(set_cookie(&r, "assay_session").is_none());
    assert_eq!(r.text().await.expect("body"), first, "the answers must not tell new and taken addresses apart");
    assert_eq!(db.count("SELECT COUNT(*) FROM auth.users").await, 1);

    // Two mails: the verification link, and the owner's notice of the second attempt.
    sink.wait_for("new@example.com", 1).await;
    let mails: Vec<String> = sink.messages().into_iter().filter(|m| m.contains("X-Envelope-To: new@example.com")).collect();
    let mail = mails.iter().find(|m| m.contains("/auth/verify?token=")).expect("a verification mail").clone();
    assert!(mails.iter().any(|m| m.contains("Someone tried to create")), "the owner is told of the second attempt");
    let link = link_in(&mail, "/auth/verify?token=");
    let admin = Admin::new(&db, &e);
    let (_, list) = admin.call("GET", "/users?q=new@example.com", None).await;
    assert_eq!(list["users"][0]["email_verified"], json!(false));
    // Opening the link does not use it up (mail scanners prefetch links); the button does.
    let (status, html) = page(&c, &e.at(&path_of(&link))).await;
    assert_eq!(status, 200);
    let (_, list) = admin.call("GET", "/users?q=new@example.com", None).await;
    assert_eq!(list["users"][0]["email_verified"], json!(false));
    let verify_token = link.split("token=").nth(1).expect("token").to_string();
    let r = post_form(&c, &e.at("/auth/verify"), &[("csrf_token", &csrf_in(&html)), ("token", &verify_token)]).await;
    assert_eq!(r.status(), 200);
    let (_, list) = admin.call("GET", "/users?q=new@example.com", None).await;
    assert_eq!(list["users"][0]["email_verified"], json!(true));
    let r = post_form(&c, &e.at("/auth/verify"), &[("csrf_token", &csrf_in(&html)), ("token", &verify_token)]).await;
    assert_eq!(r.status(), 400, "a verification link works once");
    // Only the token's hash is stored.
    assert_eq!(db.count(&format!("SELECT COUNT(*) FROM auth.user_tokens WHERE token_hash = '{}'", sha256_hex(&verify_token))).await, 1);
    assert_eq!(db.count(&format!("SELECT COUNT(*) FROM auth.user_tokens WHERE token_hash = '{verify_token}'")).await, 0);
}

/// Recovery: the same answer for known and unknown addresses, a single-use emailed link, the
/// new password works, the old one and every earlier session do not.
pub async fn recovery_by_mail(b: Backend) {
    let db = TestDb::new(b).await;
    let sink = SmtpSink::start(&db);
    let e = Setup::new(&db).extra(&sink.toml()).start().await;
    let admin = Admin::new(&db, &e);
    admin.create_user("rita@example.com", Some(PASSWORD)).await;
    let old_session = browser();
    assert_eq!(login(&old_session, &e, "rita@example.com", PASSWORD, None).await.status(), 303);

    let c = browser();
    let (_, html) = page(&c, &e.at("/auth/recovery")).await;
    let token = csrf_in(&html);
    let known = post_form(&c, &e.at("/auth/recovery"), &[("csrf_token", &token), ("email", "rita@example.com")]).await;
    let known_status = known.status();
    let known_body = known.text().await.expect("body");
    let unknown = post_form(&c, &e.at("/auth/recovery"), &[("csrf_token", &token), ("email", "ghost@example.com")]).await;
    assert_eq!(known_status, unknown.status());
    let unknown_body = unknown.text().await.expect("body");
    let strip = |s: &str| s.replace("rita@example.com", "").replace("ghost@example.com", "");
    let (known_body, unknown_body) = match known_body.contains("name=\"csrf_token\"") {
        true => (known_body.replace(&csrf_in(&known_body), "TOKEN"), unknown_body.replace(&csrf_in(&unknown_body), "TOKEN")),
        false => (known_body, unknown_body),
    };
    assert_eq!(strip(&known_body), strip(&unknown_body), "the answers must not tell the accounts apart");
    let mail = sink.wait_for("rita@example.com", 0).await;
    assert_eq!(sink.count_to("ghost@example.com"), 0);
    let link = link_in(&mail, "/auth/recovery/reset?token=");
    let reset_token = link.split("token=").nth(1).expect("token").to_string();

    let (status, html) = page(&c, &e.at(&path_of(&link))).await;
    assert_eq!(status, 200);
    let csrf = csrf_in(&html);
    let new_password = "a brand new passphrase";
    let r = post_form(
        &c,
        &e.at("/auth/recovery/reset"),
        &[("csrf_token", &csrf), ("token", &reset_token), ("password", new_password), ("password_confirm", new_password)],
    )
    .await;
    assert_eq!(r.status(), 303, "{}", r.text().await.unwrap_or_default());
    // Used once only.
    let r = post_form(
        &c,
        &e.at("/auth/recovery/reset"),
        &[
            ("csrf_token", &csrf),
            ("token", &reset_token),
            ("password", "yet another passphrase"),
            ("password_confirm", "yet another passphrase"),
        ],
    )
    .await;
    assert_eq!(r.status(), 400);
    // Every session of the user ended; the old password fails, the new one works.
    assert_eq!(page(&old_session, &e.at("/auth/welcome")).await.0, 303);
    assert_eq!(login(&browser(), &e, "rita@example.com", PASSWORD, None).await.status(), 401);
    assert_eq!(login(&browser(), &e, "rita@example.com", new_password, None).await.status(), 303);
    assert!(db.count("SELECT COUNT(*) FROM auth.audit WHERE action = 'password.reset'").await >= 1);

    // An administrator can send the link too.
    let (_, list) = admin.call("GET", "/users?q=rita", None).await;
    let id = list["users"][0]["id"].as_str().expect("id").to_string();
    let (status, body) = admin.call("POST", &format!("/users/{id}/password-reset"), None).await;
    assert_eq!(status, 202, "{body}");
    sink.wait_for("rita@example.com", 1).await;
}

/// Failed logins are delayed, then locked, per account and per IP; counters live in the
/// database, are visible and clearable through the admin API, and are audited.
pub async fn brute_force_throttling(b: Backend) {
    let db = TestDb::new(b).await;
    let e = Setup::new(&db)
        .extra("[auth.brute_force]\nfree_failures = 2\nmax_failures = 4\nip_max_failures = 9\nlockout_secs = 120\n")
        .start()
        .await;
    let admin = Admin::new(&db, &e);
    admin.create_user("tom@example.com", Some(PASSWORD)).await;
    admin.create_user("uma@example.com", Some(PASSWORD)).await;
    let c = browser();
    for _ in 0..2 {
        assert_eq!(login(&c, &e, "tom@example.com", "wrong password", None).await.status(), 401);
    }
    // The third failure starts the delay: the next attempt, even with the right password, waits.
    assert_eq!(login(&c, &e, "tom@example.com", "wrong password", None).await.status(), 401);
    let r = login(&c, &e, "tom@example.com", PASSWORD, None).await;
    assert_eq!(r.status(), 429);
    assert!(r.text().await.expect("body").contains("Too many attempts"));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // The fourth failure locks the account for lockout_secs.
    assert_eq!(login(&c, &e, "tom@example.com", "wrong password", None).await.status(), 401);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(login(&c, &e, "tom@example.com", PASSWORD, None).await.status(), 429);
    // Another account from the same IP is not locked yet.
    assert_eq!(login(&browser(), &e, "uma@example.com", PASSWORD, None).await.status(), 303);

    let (status, list) = admin.call("GET", "/login-throttles", None).await;
    assert_eq!(status, 200);
    let entry = list["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .find(|x| x["key"] == "account:tom@example.com")
        .cloned()
        .expect("tom's counter");
    assert_eq!(entry["failures"], json!(4));
    assert!(entry["locked_until"].is_string(), "{entry}");
    assert!(db.count("SELECT COUNT(*) FROM auth.audit WHERE action = 'login.locked'").await >= 1);
    let (status, _) = admin.call("DELETE", "/login-throttles/account:tom@example.com", None).await;
    assert_eq!(status, 204);
    let (status, _) = admin.call("DELETE", "/login-throttles/account:tom@example.com", None).await;
    assert_eq!(status, 404);
    assert_eq!(login(&browser(), &e, "tom@example.com", PASSWORD, None).await.status(), 303);

    // Per IP: failures spread over accounts lock the address (9 in all from 127.0.0.1).
    let already = db.count("SELECT COALESCE(MAX(failures), 0) FROM auth.login_throttle WHERE key = 'ip:127.0.0.1'").await;
    for i in already..9 {
        let r = login(&browser(), &e, &format!("spray{i}@example.com"), "guess", None).await;
        assert_eq!(r.status(), 401, "attempt {i}");
    }
    assert_eq!(login(&browser(), &e, "uma@example.com", PASSWORD, None).await.status(), 429, "the IP must be locked");
    let (status, _) = admin.call("DELETE", "/login-throttles/ip:127.0.0.1", None).await;
    assert_eq!(status, 204);
    assert_eq!(login(&browser(), &e, "uma@example.com", PASSWORD, None).await.status(), 303);
}

/// The admin API: keys, CRUD, search and pagination, sessions, audit filters, bad input.
pub async fn admin_api(b: Backend) {
    let db = TestDb::new(b).await;
    let e = Setup::new(&db).start().await;
    let admin = Admin::new(&db, &e);
    let c = client();

    // No key, a wrong key, a malformed header: 401 JSON with WWW-Authenticate.
    for auth in [None, Some("Bearer sk_admin_wrong"), Some("Basic Zm9vOmJhcg==")] {
        let mut rb = c.get(e.at("/auth/admin/auth/users"));
        if let Some(a) = auth {
            rb = rb.header("authorization", a);
        }
        let r = rb.send().await.expect("GET");
        assert_eq!(r.status(), 401);
        assert!(r.headers().contains_key("www-authenticate"));
        let body: Value = r.json().await.expect("json");
        assert_eq!(body["error"], "unauthorized");
        assert!(body["error_description"].is_string());
    }

    // Create, duplicate (case-insensitive), bad input.
    let ann = admin.create_user("ann@example.com", Some(PASSWORD)).await;
    assert_eq!(ann["email"], "ann@example.com");
    assert!(ann.get("password").is_none() && ann.get("password_hash").is_none());
    assert_eq!(ann["has_password"], json!(true));
    let (status, body) = admin.call("POST", "/users", Some(json!({ "email": "ANN@example.com" }))).await;
    assert_eq!((status, body["error"].as_str()), (409, Some("conflict")));
    let r = c
        .post(e.at("/auth/admin/auth/users"))
        .bearer_auth(&admin.key)
        .header("content-type", "application/json")
        .body("{\"email\": ")
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.expect("json")["error"], "invalid_request");
    for bad in [
        json!({ "email": "not-an-email" }),
        json!({ "email": 42 }),
        json!({}),
        json!({ "email": "x@example.com", "roles": "admin" }),
        json!({ "email": "x@example.com", "password": "short" }),
    ] {
        let (status, body) = admin.call("POST", "/users", Some(bad.clone())).await;
        assert_eq!(status, 422, "{bad} -> {body}");
        assert!(body["error_description"].as_str().is_some_and(|d| !d.is_empty()));
    }
    assert_eq!(db.count("SELECT COUNT(*) FROM auth.users").await, 1, "failed creates left rows behind");
    // The stored hash is Argon2id PHC, never the password.
    let phc = db.count("SELECT COUNT(*) FROM auth.users WHERE password_hash LIKE '$argon2id$v=19$m=19456,t=2,p=1$%'").await;
    assert_eq!(phc, 1);

    // Search and pagination.
    for i in 0..5 {
        admin.create_user(&format!("page{i}@example.org"), None).await;
    }
    let (status, page1) = admin.call("GET", "/users?q=EXAMPLE.ORG&limit=2", None).await;
    assert_eq!(status, 200);
    assert_eq!(page1["users"].as_array().expect("users").len(), 2);
    let cursor = page1["next_cursor"].as_str().expect("cursor").to_string();
    let (_, page2) = admin.call("GET", &format!("/users?q=example.org&limit=2&cursor={cursor}"), None).await;
    let (_, page3) =
        admin.call("GET", &format!("/users?q=example.org&limit=2&cursor={}", page2["next_cursor"].as_str().expect("cursor")), None).await;
    assert_eq!(page3["users"].as_array().expect("users").len(), 1);
    assert!(page3["next_cursor"].is_null());
    let mut seen: Vec<String> = [&page1, &page2, &page3]
        .iter()
        .flat_map(|p| p["users"].as_array().expect("users").iter().map(|u| u["email"].as_str().expect("email").to_string()))
        .collect();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 5);
    let (status, _) = admin.call("GET", "/users?limit=0", None).await;
    assert_eq!(status, 422);
    let (status, _) = admin.call("GET", "/users?limit=abc", None).await;
    assert_eq!(status, 422);

    // One user with sessions; PATCH; sessions revoked one by one and all at once.
    let id = ann["id"].as_str().expect("id").to_string();
    let b1 = browser();
    let b2 = browser();
    assert_eq!(login(&b1, &e, "ann@example.com", PASSWORD, None).await.status(), 303);
    assert_eq!(login(&b2, &e, "ann@example.com", PASSWORD, None).await.status(), 303);
    let (status, one) = admin.call("GET", &format!("/users/{id}"), None).await;
    assert_eq!(status, 200);
    let sessions = one["sessions"].as_array().expect("sessions").clone();
    assert_eq!(sessions.len(), 2);
    assert!(sessions.iter().all(|s| s.get("csrf_token").is_none() && s.get("token_hash").is_none()), "{one}");
    let (status, patched) = admin
        .call(
            "PATCH",
            &format!("/users/{id}"),
            Some(json!({ "display_name": "Ann A.", "roles": ["editor"], "metadata": { "team": "blue" } })),
        )
        .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(
        (patched["display_name"].as_str(), patched["roles"][0].as_str(), patched["metadata"]["team"].as_str()),
        (Some("Ann A."), Some("editor"), Some("blue"))
    );
    let (status, _) = admin.call("PATCH", &format!("/users/{id}"), Some(json!({ "email_verified": "yes" }))).await;
    assert_eq!(status, 422);
    let (status, list) = admin.call("GET", &format!("/sessions?user_id={id}"), None).await;
    assert_eq!(status, 200);
    assert_eq!(list["sessions"].as_array().expect("sessions").len(), 2);
    let sid = list["sessions"][0]["id"].as_str().expect("sid").to_string();
    assert_eq!(admin.call("DELETE", &format!("/sessions/{sid}"), None).await.0, 204);
    assert_eq!(admin.call("DELETE", &format!("/sessions/{sid}"), None).await.0, 404);
    let (status, body) = admin.call("DELETE", &format!("/users/{id}/sessions"), None).await;
    assert_eq!((status, body["revoked"].as_i64()), (200, Some(1)));
    assert_eq!(page(&b1, &e.at("/auth/welcome")).await.0, 303);
    assert_eq!(page(&b2, &e.at("/auth/welcome")).await.0, 303);

    // 404s and delete.
    assert_eq!(admin.call("GET", "/users/00000000-0000-7000-8000-000000000000", None).await.0, 404);
    assert_eq!(admin.call("GET", "/users/not-an-id", None).await.0, 404);
    assert_eq!(admin.call("DELETE", &format!("/users/{id}"), None).await.0, 204);
    assert_eq!(admin.call("DELETE", &format!("/users/{id}"), None).await.0, 404);
    assert_eq!(admin.call("GET", &format!("/users/{id}"), None).await.0, 404);

    // Audit: filters and pagination; actors are the key, not a person.
    let (status, audit) = admin.call("GET", "/audit?action=user.create&limit=2", None).await;
    assert_eq!(status, 200);
    let entries = audit["entries"].as_array().expect("entries");
    assert_eq!(entries.len(), 2);
    assert!(entries.iter().all(|x| x["action"] == "user.create" && x["actor"] == "api_key:bootstrap"), "{audit}");
    assert!(entries[0]["id"].as_i64() > entries[1]["id"].as_i64(), "newest first");
    let (_, rest) = admin
        .call("GET", &format!("/audit?action=user.create&limit=200&cursor={}", audit["next_cursor"].as_str().expect("cursor")), None)
        .await;
    assert_eq!(rest["entries"].as_array().expect("entries").len(), 4, "6 creates in all");
    let (_, by_actor) = admin.call("GET", "/audit?actor=api_key:bootstrap&action=user.delete", None).await;
    assert_eq!(by_actor["entries"].as_array().expect("entries").len(), 1);
    let (_, future) = admin.call("GET", "/audit?since=2999-01-01T00:00:00Z", None).await;
    assert_eq!(future["entries"].as_array().expect("entries").len(), 0);
    let (_, past) = admin.call("GET", "/audit?until=2000-01-01T00:00:00Z", None).await;
    assert_eq!(past["entries"].as_array().expect("entries").len(), 0);
    assert_eq!(admin.call("GET", "/audit?since=yesterday", None).await.0, 422);

    // A session of a user with the admin role works too, with CSRF on changes; others get 403.
    let boss = admin.call("POST", "/users", Some(json!({ "email": "boss@example.com", "password": PASSWORD, "roles": ["admin"] }))).await.1;
    assert_eq!(boss["roles"][0], "admin");
    admin.create_user("pleb@example.com", Some(PASSWORD)).await;
    let bb = browser();
    assert_eq!(login(&bb, &e, "boss@example.com", PASSWORD, None).await.status(), 303);
    let r = bb.get(e.at("/auth/admin/auth/users")).send().await.expect("GET");
    assert_eq!(r.status(), 200);
    let r = bb.post(e.at("/auth/admin/auth/users")).json(&json!({ "email": "via-session@example.com" })).send().await.expect("POST");
    assert_eq!(r.status(), 403, "a session-authenticated change without a CSRF token");
    let pb = browser();
    assert_eq!(login(&pb, &e, "pleb@example.com", PASSWORD, None).await.status(), 303);
    let r = pb.get(e.at("/auth/admin/auth/users")).send().await.expect("GET");
    assert_eq!(r.status(), 403);
}

/// `users create` bootstraps the first administrator, who can then open the console.
pub async fn users_create_cli(b: Backend) {
    let db = TestDb::new(b).await;
    let setup = Setup::new(&db);
    let config = setup.write("engine.toml");
    let cfg = config.display().to_string();
    let (code, out, err) = run_cli_stdin(
        &["users", "create", "--config", &cfg, "--email", "root@example.com", "--password-stdin", "--admin"],
        db.dir.path(),
        &format!("{PASSWORD}\n"),
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("root@example.com") && out.contains("admin"), "{out}");
    let (code, _, err) = run_cli_stdin(
        &["users", "create", "--config", &cfg, "--email", "ROOT@example.com", "--password-stdin"],
        db.dir.path(),
        &format!("{PASSWORD}\n"),
    );
    assert_eq!(code, 1, "a duplicate email must fail");
    assert!(err.contains("conflict"), "{err}");
    let (code, _, err) =
        run_cli_stdin(&["users", "create", "--config", &cfg, "--email", "weak@example.com", "--password-stdin"], db.dir.path(), "short\n");
    assert_eq!(code, 1);
    assert!(err.contains("weak_password"), "{err}");

    let e = Engine::start_with(&config, db.dir.path()).await;
    let c = browser();
    let r = c.get(e.at("/auth/console")).send().await.expect("GET");
    assert_eq!(r.status(), 303);
    let to_login = location(&r);
    let r = c.get(e.at(&to_login)).send().await.expect("GET");
    let r = if r.status() == 303 { c.get(e.at(&location(&r))).send().await.expect("GET") } else { r };
    assert!(r.url().path().starts_with("/auth/login") || to_login.starts_with("/auth/login"), "{to_login}");
    let r = login(&c, &e, "root@example.com", PASSWORD, Some("/auth/console")).await;
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/auth/console");
    let (status, html) = page(&c, &e.at("/auth/console/users")).await;
    assert_eq!(status, 200);
    assert!(html.contains("root@example.com"), "{html}");
}

/// A hash made with older parameters is replaced at the next login; sessions past their idle
/// or absolute expiry stop working.
pub async fn rehash_and_expiry(b: Backend) {
    let db = TestDb::new(b).await;
    let cheap = Setup::new(&db).extra("[auth.password]\nmemory_kib = 8192\niterations = 1\n");
    let config = cheap.write("cheap.toml");
    let (code, out, err) = run_cli_stdin(
        &["users", "create", "--config", &config.display().to_string(), "--email", "old@example.com", "--password-stdin"],
        db.dir.path(),
        &format!("{PASSWORD}\n"),
    );
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(db.count("SELECT COUNT(*) FROM auth.users WHERE password_hash LIKE '$argon2id$v=19$m=8192,t=1,p=1$%'").await, 1);

    let e = Setup::new(&db).start().await;
    let c = browser();
    assert_eq!(login(&c, &e, "old@example.com", PASSWORD, None).await.status(), 303);
    assert_eq!(
        db.count("SELECT COUNT(*) FROM auth.users WHERE password_hash LIKE '$argon2id$v=19$m=19456,t=2,p=1$%'").await,
        1,
        "not re-hashed"
    );
    assert_eq!(login(&browser(), &e, "old@example.com", PASSWORD, None).await.status(), 303, "the new hash must verify");
    assert_eq!(page(&c, &e.at("/auth/welcome")).await.0, 200);

    // Past the idle expiry (or the absolute one), the session is dead.
    let past = match b {
        Backend::Sqlite => "'2000-01-01T00:00:00.000000Z'",
        Backend::Postgres => "'2000-01-01T00:00:00Z'",
    };
    db.exec(&format!("UPDATE auth.sessions SET idle_expires_at = {past}")).await;
    assert_eq!(page(&c, &e.at("/auth/welcome")).await.0, 303, "an idle-expired session still works");
    assert_eq!(login(&c, &e, "old@example.com", PASSWORD, None).await.status(), 303);
    db.exec(&format!("UPDATE auth.sessions SET expires_at = {past}")).await;
    assert_eq!(page(&c, &e.at("/auth/welcome")).await.0, 303, "an expired session still works");
    let (status, list) = Admin::new(&db, &e).call("GET", "/sessions", None).await;
    assert_eq!(status, 200);
    assert_eq!(list["sessions"].as_array().expect("sessions").len(), 0, "expired sessions are not listed");
}
