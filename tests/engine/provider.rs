//! The OpenID provider from the outside, in Rust: back-channel logout against a local receiver
//! (retried across an engine restart), key rotation with tokens issued before it, malformed
//! requests at every endpoint, and the operator's overrides of the consent flow and the
//! claims hook. The full relying-party run with an independent client library is
//! `relying_party.rs` (openid-client from npm).

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{json, Value};

use crate::harness::*;

pub(crate) const EMAIL: &str = "rp.user@example.com";
pub(crate) const PASSWORD: &str = "a long enough passphrase";
pub(crate) const CALLBACK: &str = "http://127.0.0.1:9/cb";

pub(crate) fn admin_key(db: &TestDb) -> String {
    std::fs::read_to_string(db.data_dir().join("admin-key")).expect("admin key").trim().to_string()
}

pub(crate) async fn admin_post(e: &Engine, key: &str, path: &str, body: Value) -> Value {
    let r = client().post(e.at(path)).bearer_auth(key).json(&body).send().await.expect("admin call");
    let status = r.status().as_u16();
    let v: Value = r.json().await.expect("json");
    assert!(status == 200 || status == 201, "{path}: {status} {v}");
    v
}

pub(crate) async fn make_user(e: &Engine, key: &str, roles: &[&str]) -> String {
    let u = admin_post(
        e,
        key,
        "/auth/admin/auth/users",
        json!({ "email": EMAIL, "password": PASSWORD, "roles": roles, "display_name": "RP User" }),
    )
    .await;
    u["id"].as_str().expect("id").to_string()
}

pub(crate) async fn make_client(e: &Engine, key: &str, extra: Value) -> (String, String) {
    let mut body = json!({
        "name": "Test RP",
        "redirect_uris": [CALLBACK],
        "default_scopes": ["openid", "profile", "email", "groups", "offline_access"],
    });
    for (k, v) in extra.as_object().expect("object") {
        body[k] = v.clone();
    }
    let c = admin_post(e, key, "/auth/admin/auth/oidc-clients", body).await;
    (c["client_id"].as_str().expect("client_id").to_string(), c["client_secret"].as_str().unwrap_or_default().to_string())
}

/// The `type="hidden"` inputs of a page, as the browser would send them.
pub(crate) fn hidden_fields(html: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for part in html.split("type=\"hidden\" name=\"").skip(1) {
        let Some((name, rest)) = part.split_once('"') else { continue };
        let value = rest.split_once("value=\"").and_then(|(_, v)| v.split_once('"')).map(|(v, _)| v).unwrap_or_default();
        out.push((name.to_string(), value.replace("&amp;", "&").replace("&#x2f;", "/").replace("&#x3d;", "=")));
    }
    out
}

pub(crate) fn pkce() -> (String, String) {
    let verifier = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
    let challenge = URL_SAFE_NO_PAD.encode(<sha2::Sha256 as sha2::Digest>::digest(verifier.as_bytes()));
    (verifier, challenge)
}

pub(crate) fn jwt_parts(token: &str) -> (Value, Value) {
    let mut p = token.split('.');
    let dec = |s: Option<&str>| -> Value { serde_json::from_slice(&URL_SAFE_NO_PAD.decode(s.expect("part")).expect("b64")).expect("json") };
    (dec(p.next()), dec(p.next()))
}

/// A browser: cookies kept, redirects followed by hand.
pub(crate) struct Browser {
    c: reqwest::Client,
    base: String,
}

impl Browser {
    pub(crate) fn new(e: &Engine) -> Browser {
        let c = reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().expect("client");
        Browser { c, base: e.url.clone() }
    }

    fn abs(&self, loc: &str) -> String {
        if loc.starts_with("http") {
            loc.to_string()
        } else {
            format!("{}{loc}", self.base)
        }
    }

    pub(crate) async fn get(&self, url: &str) -> (u16, String, String) {
        let r = self.c.get(self.abs(url)).send().await.expect("GET");
        let loc = r.headers().get("location").map(|v| v.to_str().expect("ascii").to_string()).unwrap_or_default();
        (r.status().as_u16(), loc, r.text().await.expect("body"))
    }

    pub(crate) async fn post(&self, url: &str, form: &[(String, String)]) -> (u16, String, String) {
        let r = self.c.post(self.abs(url)).form(form).send().await.expect("POST");
        let loc = r.headers().get("location").map(|v| v.to_str().expect("ascii").to_string()).unwrap_or_default();
        (r.status().as_u16(), loc, r.text().await.expect("body"))
    }

    /// From an authorization URL to the callback URL: signs in if asked, allows consent if
    /// asked. Returns the callback URL and whether the consent page was shown.
    pub(crate) async fn authorize(&self, url: &str) -> (String, bool) {
        let (mut status, mut loc, mut body) = self.get(url).await;
        let mut consented = false;
        for _ in 0..10 {
            if loc.starts_with(CALLBACK) {
                return (loc, consented);
            }
            if status == 200 && body.contains("action=\"/auth/login\"") {
                let mut form = hidden_fields(&body);
                form.push(("email".into(), EMAIL.into()));
                form.push(("password".into(), PASSWORD.into()));
                (status, loc, body) = self.post("/auth/login", &form).await;
                continue;
            }
            if status == 200 && body.contains("action=\"/auth/consent\"") {
                consented = true;
                let mut form = hidden_fields(&body);
                form.push(("decision".into(), "allow".into()));
                form.push(("remember".into(), "1".into()));
                (status, loc, body) = self.post("/auth/consent", &form).await;
                continue;
            }
            assert_eq!(status, 303, "unexpected answer on the way to the callback: {status} {body}");
            (status, loc, body) = self.get(&loc).await;
        }
        panic!("never reached the callback; last: {status} {loc} {body}");
    }
}

fn query_of(url: &str) -> Vec<(String, String)> {
    url::Url::parse(url).expect("url").query_pairs().into_owned().collect()
}

pub(crate) fn param(url: &str, name: &str) -> Option<String> {
    query_of(url).into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

pub(crate) fn auth_url(e: &Engine, client_id: &str, challenge: &str, extra: &str) -> String {
    e.at(&format!(
        "/auth/authorize?response_type=code&client_id={client_id}&redirect_uri={}&scope=openid%20profile%20email%20groups&state=s1&nonce=n1&code_challenge={challenge}&code_challenge_method=S256{extra}",
        urlencode(CALLBACK)
    ))
}

fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Code flow to tokens: (token response, browser).
pub(crate) async fn tokens(e: &Engine, client_id: &str, secret: &str) -> (Value, Browser) {
    let b = Browser::new(e);
    let (verifier, challenge) = pkce();
    let (cb, _) = b.authorize(&auth_url(e, client_id, &challenge, "")).await;
    (exchange(e, client_id, secret, &cb, &verifier).await, b)
}

/// The tokens for the code a callback URL carries.
pub(crate) async fn exchange(e: &Engine, client_id: &str, secret: &str, callback: &str, verifier: &str) -> Value {
    let code = param(callback, "code").expect("code");
    let r = client()
        .post(e.at("/auth/token"))
        .basic_auth(client_id, Some(secret))
        .form(&[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", CALLBACK), ("code_verifier", verifier)])
        .send()
        .await
        .expect("token");
    assert_eq!(r.status(), 200);
    r.json().await.expect("json")
}

/// One HTTP request read off a socket: (request line, body).
async fn read_request(sock: &mut tokio::net::TcpStream) -> (String, String) {
    use tokio::io::AsyncReadExt;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = sock.read(&mut chunk).await.expect("read");
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf).to_string();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let len = head
                .lines()
                .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse::<usize>().unwrap_or(0)))
                .unwrap_or(0);
            if body.len() >= len {
                return (head.lines().next().unwrap_or_default().to_string(), body.to_string());
            }
        }
    }
    (String::new(), String::new())
}

pub async fn backchannel_logout(b: Backend) {
    let db = TestDb::new(b).await;
    let config = Setup::new(&db).public_port().write("engine.toml");
    let mut e = Engine::start_with(&config, db.dir.path()).await;
    let key = admin_key(&db);
    make_user(&e, &key, &[]).await;
    // A receiver port that nothing listens on yet: the first delivery must fail.
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let receiver = format!("http://127.0.0.1:{port}/backchannel");
    let (client_id, secret) = make_client(&e, &key, json!({ "backchannel_logout_uri": receiver, "skip_consent": true })).await;
    let (tok, browser) = tokens(&e, &client_id, &secret).await;
    let (_, id_claims) = jwt_parts(tok["id_token"].as_str().expect("id_token"));
    let sid = id_claims["sid"].as_str().expect("sid in the ID token").to_string();
    assert_eq!(db.count(&format!("SELECT COUNT(*) FROM auth.oidc_sessions WHERE sid = '{sid}'")).await, 1);

    // Signing in again (prompt=login) keeps the session and its sid: no Logout Token for it.
    let (verifier, challenge) = pkce();
    let (cb, _) = browser.authorize(&auth_url(&e, &client_id, &challenge, "&prompt=login")).await;
    let again = exchange(&e, &client_id, &secret, &cb, &verifier).await;
    let (_, again_claims) = jwt_parts(again["id_token"].as_str().expect("id_token"));
    assert_eq!(again_claims["sid"], sid.as_str(), "a re-login changed the sid");
    assert!(again_claims["auth_time"].as_i64() >= id_claims["auth_time"].as_i64());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(db.count("SELECT COUNT(*) FROM auth.oidc_logout_deliveries").await, 0, "a re-login logged the RP out");

    // The user signs out on the provider's own page.
    let (_, _, page) = browser.get("/auth/logout").await;
    let form = hidden_fields(&page);
    let (status, _, _) = browser.post("/auth/logout", &form).await;
    assert_eq!(status, 303);
    assert!(
        eventually(Duration::from_secs(10), || async {
            db.count("SELECT COUNT(*) FROM auth.oidc_logout_deliveries WHERE attempts >= 1").await == 1
        })
        .await,
        "the first delivery was not attempted:\n{}",
        e.logs()
    );
    // The session-bound grant (no offline_access) ended with the session.
    assert_eq!(db.count("SELECT COUNT(*) FROM auth.oidc_refresh_tokens WHERE revoked = FALSE").await, 0);

    // The engine stops with the delivery pending; the receiver comes up; a new engine on the
    // same database delivers it.
    e.signal("TERM");
    e.wait_exit(Duration::from_secs(10)).await;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.expect("receiver");
    let e2 = Engine::start_with(&config, db.dir.path()).await;
    let (mut sock, _) =
        tokio::time::timeout(Duration::from_secs(30), listener.accept()).await.expect("the retry came within 30 s").expect("accept");
    let (line, body) = read_request(&mut sock).await;
    use tokio::io::AsyncWriteExt;
    sock.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").await.expect("answer");
    drop(sock);
    assert!(line.starts_with("POST /backchannel "), "{line}");
    let token =
        form_urlencoded::parse(body.as_bytes()).find(|(k, _)| k == "logout_token").map(|(_, v)| v.into_owned()).expect("logout_token");
    let (header, claims) = jwt_parts(&token);
    assert_eq!(header["typ"], "logout+jwt", "{header}");
    assert_eq!(claims["iss"], format!("{}/auth", e2.url));
    assert_eq!(claims["aud"], client_id.as_str());
    assert_eq!(claims["sid"], sid.as_str());
    assert_eq!(claims["sub"], id_claims["sub"]);
    assert!(claims["events"]["http://schemas.openid.net/event/backchannel-logout"].is_object(), "{claims}");
    assert!(claims.get("nonce").is_none() && claims["jti"].is_string() && claims["iat"].is_i64());
    // Signed when sent, not when queued: still valid though queued long before.
    let now = chrono::Utc::now().timestamp();
    assert!(claims["exp"].as_i64().expect("exp") > now && claims["iat"].as_i64().expect("iat") >= now - 30, "{claims}");
    // Its signature verifies with the published key it names.
    let jwks: Value = client().get(e2.at("/.well-known/jwks.json")).send().await.expect("jwks").json().await.expect("json");
    let jwk = jwks["keys"].as_array().expect("keys").iter().find(|k| k["kid"] == header["kid"]).expect("kid published").clone();
    let n = URL_SAFE_NO_PAD.decode(jwk["n"].as_str().expect("n")).expect("n");
    let ex = URL_SAFE_NO_PAD.decode(jwk["e"].as_str().expect("e")).expect("e");
    let (signed, sig) = token.rsplit_once('.').expect("sig");
    aws_lc_rs::signature::RsaPublicKeyComponents { n: &n, e: &ex }
        .verify(&aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256, signed.as_bytes(), &URL_SAFE_NO_PAD.decode(sig).expect("b64"))
        .expect("the Logout Token's signature verifies");
    assert!(
        eventually(Duration::from_secs(10), || async { db.count("SELECT COUNT(*) FROM auth.oidc_logout_deliveries").await == 0 }).await,
        "a delivered token stays queued"
    );
    assert_eq!(db.count(&format!("SELECT COUNT(*) FROM auth.oidc_sessions WHERE sid = '{sid}'")).await, 0);
}

pub async fn provider_key_rotation(b: Backend) {
    let db = TestDb::new(b).await;
    let e = Setup::new(&db).public_port().start().await;
    let key = admin_key(&db);
    make_user(&e, &key, &[]).await;
    let (client_id, secret) = make_client(&e, &key, json!({ "skip_consent": true })).await;
    let (old, _) = tokens(&e, &client_id, &secret).await;
    let old_kid = jwt_parts(old["id_token"].as_str().expect("id_token")).0["kid"].clone();
    let rotated = admin_post(&e, &key, "/auth/admin/auth/jwks/rotate", json!({ "alg": "RS256" })).await;
    assert_ne!(rotated["kid"], old_kid, "{rotated}");
    // Engines re-read the active kid within a few seconds.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let (new, _) = tokens(&e, &client_id, &secret).await;
    let new_kid = jwt_parts(new["id_token"].as_str().expect("id_token")).0["kid"].clone();
    assert_ne!(new_kid, old_kid, "new tokens are signed with the new key");
    let jwks: Value = client().get(e.at("/.well-known/jwks.json")).send().await.expect("jwks").json().await.expect("json");
    let kids: Vec<Value> = jwks["keys"].as_array().expect("keys").iter().map(|k| k["kid"].clone()).collect();
    assert!(kids.contains(&old_kid) && kids.contains(&new_kid), "{kids:?}");
    // The access token issued before the rotation still works at userinfo and introspection.
    let r = client().get(e.at("/auth/userinfo")).bearer_auth(old["access_token"].as_str().expect("at")).send().await.expect("userinfo");
    assert_eq!(r.status(), 200);
    let r = client()
        .post(e.at("/auth/oauth2/introspect"))
        .basic_auth(&client_id, Some(&secret))
        .form(&[("token", old["access_token"].as_str().expect("at"))])
        .send()
        .await
        .expect("introspect");
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["active"], true, "{v}");
    // And its refresh token still refreshes, now under the new key.
    let r = client()
        .post(e.at("/auth/token"))
        .basic_auth(&client_id, Some(&secret))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", old["refresh_token"].as_str().expect("rt"))])
        .send()
        .await
        .expect("refresh");
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.expect("json");
    assert_eq!(jwt_parts(v["id_token"].as_str().expect("id_token")).0["kid"], new_kid);
}

/// The status and JSON body of a POST of `form` to `path`.
pub(crate) async fn post_form(
    e: &Engine,
    path: &str,
    auth: Option<(&str, &str)>,
    form: &[(&str, &str)],
) -> (u16, Value, reqwest::header::HeaderMap) {
    let mut rb = client().post(e.at(path)).form(form);
    if let Some((id, secret)) = auth {
        rb = rb.basic_auth(id, Some(secret));
    }
    let r = rb.send().await.expect("POST");
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let text = r.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)), headers)
}

pub async fn provider_malformed_requests(b: Backend) {
    let db = TestDb::new(b).await;
    let e = Setup::new(&db).public_port().start().await;
    let key = admin_key(&db);
    make_user(&e, &key, &[]).await;
    let (client_id, secret) = make_client(&e, &key, json!({})).await;
    let c = client();
    let (_, challenge) = pkce();

    // Authorization errors before the redirect URI is trusted: a page, never a redirect.
    for (q, why) in [
        ("", "no client_id"),
        ("?client_id=nope&redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fcb&response_type=code", "unknown client"),
        (&format!("?client_id={client_id}&response_type=code")[..], "no redirect_uri"),
        (
            &format!("?client_id={client_id}&redirect_uri=https%3A%2F%2Fevil.example%2Fcb&response_type=code")[..],
            "unregistered redirect_uri",
        ),
        (&format!("?client_id={client_id}&redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fcb%2Fx&response_type=code")[..], "a longer path"),
        (&format!("?client_id={client_id}&client_id={client_id}&redirect_uri=x")[..], "repeated parameter"),
    ] {
        let r = c.get(e.at(&format!("/auth/authorize{q}"))).send().await.expect("authorize");
        assert_eq!(r.status(), 400, "{why}");
        assert!(r.headers().get("location").is_none(), "{why}: redirected");
        let body = r.text().await.expect("body");
        assert!(body.contains("<html") || body.contains("<!doctype"), "{why}: {body}");
    }
    // After it: the client's redirect URI with the spec's error code and the state.
    let base = format!("/auth/authorize?client_id={client_id}&redirect_uri={}&state=st", urlencode(CALLBACK));
    for (extra, code) in [
        ("", "invalid_request"),
        ("&response_type=token", "unsupported_response_type"),
        ("&response_type=code&scope=openid%20admin", "invalid_scope"),
        ("&response_type=code&scope=openid", "invalid_request"),
        (&format!("&response_type=code&scope=openid&code_challenge={challenge}&code_challenge_method=plain")[..], "invalid_request"),
        (
            &format!("&response_type=code&scope=openid&code_challenge={challenge}&code_challenge_method=S256&prompt=none")[..],
            "login_required",
        ),
        (
            &format!("&response_type=code&scope=openid&code_challenge={challenge}&code_challenge_method=S256&prompt=bogus")[..],
            "invalid_request",
        ),
        (
            &format!("&response_type=code&scope=openid&code_challenge={challenge}&code_challenge_method=S256&max_age=-1")[..],
            "invalid_request",
        ),
        (
            &format!("&response_type=code&scope=openid&code_challenge={challenge}&code_challenge_method=S256&claims=%7Bnot")[..],
            "invalid_request",
        ),
        ("&response_type=code&scope=openid&code_challenge=short&code_challenge_method=S256", "invalid_request"),
        (
            &format!("&response_type=code&scope=openid&code_challenge={challenge}&code_challenge_method=S256&request=eyJ")[..],
            "request_not_supported",
        ),
        (
            &format!("&response_type=code&scope=openid&code_challenge={challenge}&code_challenge_method=S256&response_mode=fragment")[..],
            "invalid_request",
        ),
    ] {
        let r = c.get(e.at(&format!("{base}{extra}"))).send().await.expect("authorize");
        assert_eq!(r.status(), 303, "{extra}: {}", r.text().await.unwrap_or_default());
        let loc = r.headers()["location"].to_str().expect("ascii").to_string();
        assert!(loc.starts_with(CALLBACK), "{extra}: {loc}");
        assert_eq!(param(&loc, "error").as_deref(), Some(code), "{extra}: {loc}");
        assert_eq!(param(&loc, "state").as_deref(), Some("st"), "{extra}: {loc}");
        assert_eq!(param(&loc, "iss"), Some(format!("{}/auth", e.url)), "{extra}: {loc}");
    }
    // form_post errors come as an auto-submitting form.
    let r = c.get(e.at(&format!("{base}&response_type=code&scope=openid&response_mode=form_post"))).send().await.expect("authorize");
    assert_eq!(r.status(), 200);
    let body = r.text().await.expect("body").replace("&#x2f;", "/");
    assert!(body.contains(&format!("action=\"{CALLBACK}\"")) && body.contains("name=\"error\" value=\"invalid_request\""), "{body}");

    // A POSTed authorization request (cross-site: no SameSite=Lax cookie) comes back as a GET.
    let r = c
        .post(e.at("/auth/authorize"))
        .form(&[("client_id", client_id.as_str()), ("response_type", "code")])
        .send()
        .await
        .expect("POST authorize");
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"].to_str().expect("ascii"), format!("/auth/authorize?client_id={client_id}&response_type=code"));

    // A parked request belongs to the browser that made it: another one cannot sign in for it.
    let first = Browser::new(&e);
    let (_, login_url, _) = first.get(&auth_url(&e, &client_id, &challenge, "")).await;
    assert!(login_url.starts_with("/auth/login?login_challenge="), "{login_url}");
    let (_, _, own) = first.get(&login_url).await;
    assert!(own.contains("name=\"login_challenge\"") && own.contains("Test RP"), "{own}");
    let stranger = Browser::new(&e);
    let (_, _, other) = stranger.get(&login_url).await;
    assert!(!other.contains("name=\"login_challenge\"") && !other.contains("Test RP"), "another browser was offered the request: {other}");
    let mut form = hidden_fields(&other);
    form.push(("login_challenge".into(), param(&e.at(&login_url), "login_challenge").expect("challenge")));
    form.push(("email".into(), EMAIL.into()));
    form.push(("password".into(), PASSWORD.into()));
    let (s, loc, _) = stranger.post("/auth/login", &form).await;
    assert_eq!(s, 303);
    assert!(!loc.starts_with("/auth/authorize/resume"), "another browser's sign-in was accepted for the request: {loc}");
    db.exec("DELETE FROM auth.oidc_auth_requests").await;

    // Token endpoint.
    let auth = Some((client_id.as_str(), secret.as_str()));
    let r = c
        .post(e.at("/auth/token"))
        .basic_auth(&client_id, Some(&secret))
        .json(&json!({ "grant_type": "client_credentials" }))
        .send()
        .await
        .expect("json body");
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.expect("json")["error"], "invalid_request");
    let (s, v, _) = post_form(&e, "/auth/token", auth, &[]).await;
    assert_eq!((s, v["error"].as_str()), (400, Some("invalid_request")), "{v}");
    let (s, v, _) = post_form(&e, "/auth/token", auth, &[("grant_type", "password")]).await;
    assert_eq!((s, v["error"].as_str()), (400, Some("unsupported_grant_type")), "{v}");
    let (s, v, _) = post_form(&e, "/auth/token", auth, &[("grant_type", "client_credentials")]).await;
    assert_eq!((s, v["error"].as_str()), (400, Some("unauthorized_client")), "{v}");
    let (s, v, _) =
        post_form(&e, "/auth/token", auth, &[("grant_type", "authorization_code"), ("code", "garbage"), ("redirect_uri", CALLBACK)]).await;
    assert_eq!((s, v["error"].as_str()), (400, Some("invalid_grant")), "{v}");
    let (s, v, _) = post_form(&e, "/auth/token", auth, &[("grant_type", "authorization_code"), ("grant_type", "refresh_token")]).await;
    assert_eq!((s, v["error"].as_str()), (400, Some("invalid_request")), "{v}");
    let (s, v, _) = post_form(&e, "/auth/token", auth, &[("grant_type", "refresh_token"), ("refresh_token", "x")]).await;
    assert_eq!((s, v["error"].as_str()), (400, Some("invalid_grant")), "{v}");
    let (s, v, h) =
        post_form(&e, "/auth/token", Some((&client_id, "wrong")), &[("grant_type", "refresh_token"), ("refresh_token", "x")]).await;
    assert_eq!((s, v["error"].as_str()), (401, Some("invalid_client")), "{v}");
    assert!(h.get("www-authenticate").is_some());
    let (s, v, _) =
        post_form(&e, "/auth/token", None, &[("grant_type", "refresh_token"), ("client_id", &client_id), ("refresh_token", "x")]).await;
    assert_eq!((s, v["error"].as_str()), (401, Some("invalid_client")), "a secret client without its secret: {v}");
    let r = c
        .post(e.at("/auth/token"))
        .header("authorization", "Basic !!!notbase64")
        .form(&[("grant_type", "refresh_token")])
        .send()
        .await
        .expect("bad basic");
    assert_eq!(r.status(), 401);
    let (s, v, _) = post_form(
        &e,
        "/auth/token",
        None,
        &[
            ("grant_type", "client_credentials"),
            ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
            ("client_assertion", "a.b.c"),
        ],
    )
    .await;
    assert_eq!((s, v["error"].as_str()), (401, Some("invalid_client")), "{v}");
    let r = c.get(e.at("/auth/token")).send().await.expect("GET token");
    assert_eq!(r.status(), 405);
    let r = c
        .post(e.at("/auth/token"))
        .basic_auth(&client_id, Some(&secret))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(vec![0xff, 0xfe, b'=', 0x00])
        .send()
        .await
        .expect("binary");
    assert_eq!(r.status(), 400);

    // Userinfo.
    let r = c.get(e.at("/auth/userinfo")).send().await.expect("userinfo");
    assert_eq!(r.status(), 401);
    assert!(r.headers()["www-authenticate"].to_str().expect("ascii").starts_with("Bearer"));
    for token in ["garbage", "a.b.c", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."] {
        let r = c.get(e.at("/auth/userinfo")).bearer_auth(token).send().await.expect("userinfo");
        assert_eq!(r.status(), 401, "{token}");
        assert!(r.headers()["www-authenticate"].to_str().expect("ascii").contains("invalid_token"), "{token}");
    }
    let r = c.get(e.at("/auth/userinfo")).header("authorization", "Basic eDp5").send().await.expect("userinfo");
    assert_eq!(r.status(), 401);

    // Introspection and revocation need an authenticated client and a token.
    for path in ["/auth/oauth2/introspect", "/auth/oauth2/revoke"] {
        let (s, v, _) = post_form(&e, path, None, &[("token", "x")]).await;
        assert_eq!((s, v["error"].as_str()), (401, Some("invalid_client")), "{path}: {v}");
        let (s, v, _) = post_form(&e, path, auth, &[]).await;
        assert_eq!((s, v["error"].as_str()), (400, Some("invalid_request")), "{path}: {v}");
    }
    let (s, v, _) = post_form(&e, "/auth/oauth2/introspect", auth, &[("token", "never-issued")]).await;
    assert_eq!((s, v), (200, json!({ "active": false })));
    let (s, _, _) = post_form(&e, "/auth/oauth2/revoke", auth, &[("token", "never-issued")]).await;
    assert_eq!(s, 200, "RFC 7009 §2.2: an unknown token is not an error");

    // Logout: a forged hint and an unregistered post-logout URI are pages, not redirects.
    let r = c.get(e.at("/auth/oauth2/sessions/logout?id_token_hint=a.b.c")).send().await.expect("logout");
    assert_eq!(r.status(), 400);
    let r = c
        .get(e.at(&format!("/auth/oauth2/sessions/logout?client_id={client_id}&post_logout_redirect_uri=https%3A%2F%2Fevil.example%2F")))
        .send()
        .await
        .expect("logout");
    assert_eq!(r.status(), 400);
    assert!(r.headers().get("location").is_none());
    // Without a session, a bare logout lands on the signed-out page.
    let r = c.get(e.at("/auth/oauth2/sessions/logout")).send().await.expect("logout");
    assert_eq!(r.status(), 303);

    // The hand-off pages with unknown challenges.
    let r = c.get(e.at("/auth/authorize/resume?challenge=unknown")).send().await.expect("resume");
    assert_eq!(r.status(), 400);
    let r = c.get(e.at("/auth/consent?consent_challenge=unknown")).send().await.expect("consent");
    assert_eq!(r.status(), 400);
    let r = c.get(e.at("/auth/login?login_challenge=unknown")).send().await.expect("login");
    assert_eq!(r.status(), 200, "an expired challenge still shows the plain sign-in form");

    // Nothing above left a parked request, a code or a grant behind, nor hurt the engine.
    assert_eq!(db.count("SELECT COUNT(*) FROM auth.oidc_authorization_codes").await, 0);
    assert_eq!(db.count("SELECT COUNT(*) FROM auth.oidc_grants").await, 0);
    assert_eq!(db.count("SELECT COUNT(*) FROM auth.oidc_auth_requests").await, 0);
    assert!(!e.logs().contains("panicked"), "{}", e.logs());
    assert_eq!(c.get(e.at("/readyz")).send().await.expect("ready").status(), 200);
}

pub async fn consent_and_claims_overrides(b: Backend) {
    let db = TestDb::new(b).await;
    // The operator's own consent flow (allow at once, remembering nothing) and claims hook.
    let flows = write_dir(
        &db,
        "flows",
        &[
            (
                "consent.lua",
                r#"
local http = require("assay.http")
local oidc = require("assay.oidc")
http.route("GET", "/auth/consent", function(req)
  local info = assert(oidc.consent_request(req.query.consent_challenge))
  local url = assert(oidc.accept_consent(req.query.consent_challenge, { scopes = info.scopes, remember = false }))
  return http.redirect(url, 303):header("X-Operator-Consent", "yes")
end)
"#,
            ),
            (
                "claims.lua",
                r#"
return function(ctx)
  if ctx.user == nil then return { machine = true } end
  local role = "user"
  for _, r in ipairs(ctx.user.roles or {}) do if r == "admin" then role = "admin" end end
  return { immich_role = role, where = ctx.target, sub = "forged" }
end
"#,
            ),
        ],
    );
    let e = Setup::new(&db).public_port().flows(&format!("dir = {:?}", flows.display().to_string())).start().await;
    let key = admin_key(&db);
    let user_id = make_user(&e, &key, &["admin"]).await;
    let (client_id, secret) =
        make_client(&e, &key, json!({ "grant_types": ["authorization_code", "refresh_token", "client_credentials"] })).await;

    let browser = Browser::new(&e);
    let (verifier, challenge) = pkce();
    let (cb, consent_page) = browser.authorize(&auth_url(&e, &client_id, &challenge, "")).await;
    assert!(!consent_page, "the operator's consent flow shows no page");
    let code = param(&cb, "code").expect("code");
    let (s, tok, _) = post_form(
        &e,
        "/auth/token",
        Some((&client_id, &secret)),
        &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", CALLBACK), ("code_verifier", &verifier)],
    )
    .await;
    assert_eq!(s, 200, "{tok}\n{}", e.logs());
    let (_, idt) = jwt_parts(tok["id_token"].as_str().expect("id_token"));
    assert_eq!(
        (idt["immich_role"].as_str(), idt["where"].as_str(), idt["sub"].as_str()),
        (Some("admin"), Some("id_token"), Some(user_id.as_str())),
        "{idt}"
    );
    assert_eq!(idt["groups"], json!(["admin"]));
    assert_eq!((idt["nonce"].as_str(), idt["name"].as_str(), idt["email"].as_str()), (Some("n1"), Some("RP User"), Some(EMAIL)));
    let (_, at) = jwt_parts(tok["access_token"].as_str().expect("access_token"));
    assert_eq!((at["immich_role"].as_str(), at["where"].as_str()), (Some("admin"), Some("access_token")), "{at}");
    let r = client().get(e.at("/auth/userinfo")).bearer_auth(tok["access_token"].as_str().expect("at")).send().await.expect("userinfo");
    let info: Value = r.json().await.expect("json");
    assert_eq!(
        (info["immich_role"].as_str(), info["where"].as_str(), info["sub"].as_str()),
        (Some("admin"), Some("userinfo"), Some(user_id.as_str())),
        "{info}"
    );
    // remember = false: nothing remembered, so the next authorization asks (the override) again.
    assert_eq!(db.count("SELECT COUNT(*) FROM auth.oidc_consents").await, 0);
    let (s, cc, _) =
        post_form(&e, "/auth/token", Some((&client_id, &secret)), &[("grant_type", "client_credentials"), ("scope", "profile")]).await;
    assert_eq!(s, 200, "{cc}");
    let (_, at) = jwt_parts(cc["access_token"].as_str().expect("access_token"));
    assert_eq!((at["sub"].as_str(), at["machine"].as_bool()), (Some(client_id.as_str()), Some(true)), "{at}");
    assert!(cc.get("id_token").is_none() && cc.get("refresh_token").is_none(), "{cc}");
}
