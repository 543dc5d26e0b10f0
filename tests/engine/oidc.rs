//! The OpenID provider's signing keys: generated at first start, published at
//! `/.well-known/jwks.json` with no private parts, sealed at rest, rotated by the CLI with the
//! old key still published.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use serde_json::Value;

use crate::harness::*;

async fn jwks(e: &Engine) -> Vec<Value> {
    let r = client().get(e.at("/.well-known/jwks.json")).send().await.expect("GET jwks");
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"].to_str().expect("ascii").starts_with("application/json"));
    let body: Value = r.json().await.expect("json");
    body["keys"].as_array().expect("keys").clone()
}

pub async fn signing_keys(b: Backend) {
    let db = TestDb::new(b).await;
    let setup = Setup::new(&db);
    let config = setup.write("engine.toml");
    let cfg = config.display().to_string();
    let e = Engine::start_with(&config, db.dir.path()).await;

    let keys = jwks(&e).await;
    assert_eq!(keys.len(), 1, "{keys:?}");
    let first = &keys[0];
    assert_eq!((first["kty"].as_str(), first["alg"].as_str(), first["use"].as_str()), (Some("RSA"), Some("RS256"), Some("sig")));
    let n = URL_SAFE_NO_PAD.decode(first["n"].as_str().expect("n")).expect("n is base64url");
    assert_eq!(n.len(), 256, "RSA 2048");
    assert_eq!(first["e"], "AQAB");
    for private in ["d", "p", "q", "dp", "dq", "qi"] {
        assert!(first.get(private).is_none(), "private member {private} published");
    }
    let kid = first["kid"].as_str().expect("kid").to_string();

    // At rest the private key is sealed: the stored bytes do not contain the modulus, which
    // any PKCS#8 RSA key carries in clear.
    let sealed: String = match b {
        Backend::Sqlite => {
            let pool = db.sqlite_pool().await;
            let v =
                sqlx::query_scalar("SELECT private_key FROM auth.jwks_keys WHERE kid = $1").bind(&kid).fetch_one(&pool).await.expect("row");
            pool.close().await;
            v
        }
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(db.pg_url.as_deref().expect("url")).await.expect("connect");
            let v =
                sqlx::query_scalar("SELECT private_key FROM auth.jwks_keys WHERE kid = $1").bind(&kid).fetch_one(&pool).await.expect("row");
            pool.close().await;
            v
        }
    };
    let raw = STANDARD.decode(&sealed).expect("base64");
    assert!(raw.len() > 1000);
    assert!(!raw.windows(32).any(|w| w == &n[..32]), "the private key is stored in clear");

    // Rotation: a new active key, the old one still published; other algorithms on demand.
    let (code, out, err) = run_cli(&["keys", "rotate", "--config", &cfg], db.dir.path());
    assert_eq!(code, 0, "{out}{err}");
    let keys = jwks(&e).await;
    assert_eq!(keys.len(), 2);
    assert_ne!(keys[0]["kid"], kid.as_str(), "the new key comes first");
    assert!(keys.iter().any(|k| k["kid"] == kid.as_str()), "the retired key must stay published");
    let (code, out, err) = run_cli(&["keys", "rotate", "--alg", "ES256", "--config", &cfg], db.dir.path());
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = run_cli(&["keys", "rotate", "--alg", "EdDSA", "--config", &cfg], db.dir.path());
    assert_eq!(code, 0, "{out}{err}");
    let keys = jwks(&e).await;
    let ec = keys.iter().find(|k| k["alg"] == "ES256").expect("an ES256 key");
    assert_eq!((ec["kty"].as_str(), ec["crv"].as_str()), (Some("EC"), Some("P-256")));
    assert_eq!(URL_SAFE_NO_PAD.decode(ec["x"].as_str().expect("x")).expect("x").len(), 32);
    let ed = keys.iter().find(|k| k["alg"] == "EdDSA").expect("an EdDSA key");
    assert_eq!((ed["kty"].as_str(), ed["crv"].as_str()), (Some("OKP"), Some("Ed25519")));
    let (code, _, err) = run_cli(&["keys", "rotate", "--alg", "HS256", "--config", &cfg], db.dir.path());
    assert_eq!(code, 1);
    assert!(err.contains("HS256"), "{err}");
    let (code, out, _) = run_cli(&["keys", "list", "--config", &cfg], db.dir.path());
    assert_eq!(code, 0);
    assert_eq!(out.lines().filter(|l| l.contains("\tactive\t")).count(), 3, "{out}");
    assert_eq!(out.lines().filter(|l| l.contains("\tretired\t")).count(), 1, "{out}");
    assert_eq!(db.count("SELECT COUNT(*) FROM auth.audit WHERE action = 'jwks.rotate'").await, 3);

    // A restart keeps the keys; engines never make a second active key of one algorithm.
    drop(e);
    let e = Engine::start_with(&config, db.dir.path()).await;
    assert_eq!(jwks(&e).await.len(), 4);
    assert_eq!(db.count("SELECT COUNT(*) FROM auth.jwks_keys WHERE status = 'active' AND alg = 'RS256'").await, 1);
}

/// Tokens signed before a rotation still verify after it; the signature checks out with the
/// published JWK alone (verified here with the RSA primitive directly, not the engine's code).
pub async fn tokens_survive_rotation(b: Backend) {
    let db = TestDb::new(b).await;
    let flows = write_dir(
        &db,
        "flows",
        &[(
            "test_jwt.lua",
            r#"
local http = require("assay.http")
local jwt = require("assay.jwt")
http.route("GET", "/auth/test/sign", function(req)
  return http.text(assert(jwt.sign({ sub = "u1", iss = "test", exp = os.time() + 300 })))
end)
http.route("GET", "/auth/test/verify", function(req)
  local claims, err = jwt.verify(req.query.token, { issuer = "test" })
  if not claims then return http.text(tostring(err), 401) end
  return http.text("ok " .. claims.sub)
end)
"#,
        )],
    );
    let setup = Setup::new(&db).flows(&format!("dir = {:?}", flows.display().to_string()));
    let config = setup.write("engine.toml");
    let e = Engine::start_with(&config, db.dir.path()).await;
    let c = client();
    let old = c.get(e.at("/auth/test/sign")).send().await.expect("sign").text().await.expect("token");
    assert_eq!(old.split('.').count(), 3, "{old}");

    // Independent check: the signature verifies with the JWKS key named by the header's kid.
    let header: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(old.split('.').next().expect("header")).expect("b64")).expect("json");
    assert_eq!((header["alg"].as_str(), header["typ"].as_str()), (Some("RS256"), Some("JWT")));
    let keys = jwks(&e).await;
    let jwk = keys.iter().find(|k| k["kid"] == header["kid"]).expect("kid published");
    let n = URL_SAFE_NO_PAD.decode(jwk["n"].as_str().expect("n")).expect("n");
    let e_ = URL_SAFE_NO_PAD.decode(jwk["e"].as_str().expect("e")).expect("e");
    let (signed, sig) = old.rsplit_once('.').expect("sig");
    let sig = URL_SAFE_NO_PAD.decode(sig).expect("sig b64");
    aws_lc_rs::signature::RsaPublicKeyComponents { n: &n, e: &e_ }
        .verify(&aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256, signed.as_bytes(), &sig)
        .expect("the signature must verify with the published key");

    let (code, out, err) = run_cli(&["keys", "rotate", "--config", &config.display().to_string()], db.dir.path());
    assert_eq!(code, 0, "{out}{err}");
    let verify = |t: String| {
        let c = c.clone();
        let url = e.at("/auth/test/verify");
        async move { c.get(url).query(&[("token", t)]).send().await.expect("verify").text().await.expect("body") }
    };
    assert_eq!(verify(old.clone()).await, "ok u1", "a token signed before the rotation must still verify");
    // The engine picks the new key up within its 5 s cache.
    let rotated = eventually(std::time::Duration::from_secs(8), || {
        let c = c.clone();
        let url = e.at("/auth/test/sign");
        let old_kid = header["kid"].clone();
        async move {
            let t = c.get(url).send().await.expect("sign").text().await.expect("token");
            let h: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(t.split('.').next().unwrap_or_default()).unwrap_or_default())
                .unwrap_or_default();
            h["kid"] != old_kid
        }
    })
    .await;
    assert!(rotated, "new tokens must be signed with the new key");
    let tampered = format!("{}x", &old[..old.len() - 1]);
    assert!(verify(tampered).await.starts_with("invalid_token"));
    assert!(verify("a.b.c".into()).await.starts_with("invalid_token"));
    assert!(verify("not a token".into()).await.starts_with("invalid_token"));
    // alg "none" with a real kid is refused.
    let none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"none","kid":{}}}"#, header["kid"])),
        old.split('.').nth(1).expect("claims")
    );
    assert!(verify(none).await.starts_with("invalid_token"));
}

/// The admin API's `jwks` resource: list and rotate, with bad input refused.
pub async fn jwks_admin_api(b: Backend) {
    let db = TestDb::new(b).await;
    let e = Setup::new(&db).start().await;
    let key = std::fs::read_to_string(db.data_dir().join("admin-key")).expect("admin key").trim().to_string();
    let c = client();
    let url = e.at("/auth/admin/auth/jwks");
    assert_eq!(c.get(&url).send().await.expect("GET").status(), 401);
    let list: Value = c.get(&url).bearer_auth(&key).send().await.expect("GET").json().await.expect("json");
    let keys = list["keys"].as_array().expect("keys");
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["status"], "active");
    assert!(keys[0]["public_jwk"]["n"].is_string() && keys[0].get("private_key").is_none());

    let r = c.post(format!("{url}/rotate")).bearer_auth(&key).json(&serde_json::json!({ "alg": "ES256" })).send().await.expect("POST");
    assert_eq!(r.status(), 201);
    let made: Value = r.json().await.expect("json");
    assert_eq!((made["alg"].as_str(), made["status"].as_str()), (Some("ES256"), Some("active")));
    let r = c.post(format!("{url}/rotate")).bearer_auth(&key).send().await.expect("POST");
    assert_eq!(r.status(), 201, "no body rotates RS256");
    let r = c.post(format!("{url}/rotate")).bearer_auth(&key).json(&serde_json::json!({ "alg": "HS256" })).send().await.expect("POST");
    assert_eq!(r.status(), 422);
    let r =
        c.post(format!("{url}/rotate")).bearer_auth(&key).header("content-type", "application/json").body("{").send().await.expect("POST");
    assert_eq!(r.status(), 400);
    assert_eq!(jwks(&e).await.len(), 3, "RS256 active and retired, ES256 active");
    assert_eq!(db.count("SELECT COUNT(*) FROM auth.audit WHERE action = 'jwks.rotate' AND actor = 'api_key:bootstrap'").await, 2);
}

/// An engine with an administrator signed in: (engine, the admin's browser).
pub(crate) async fn console_session(db: &TestDb) -> (Engine, reqwest::Client) {
    let config = Setup::new(db).write("engine.toml");
    let cfg = config.display().to_string();
    let (code, out, err) = run_cli_stdin(
        &["users", "create", "--config", &cfg, "--email", "root@example.com", "--password-stdin", "--admin"],
        db.dir.path(),
        "a long enough passphrase\n",
    );
    assert_eq!(code, 0, "{out}{err}");
    let e = Engine::start_with(&config, db.dir.path()).await;
    let c = reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().expect("client");
    let html = c.get(e.at("/auth/login")).send().await.expect("GET").text().await.expect("body");
    let token = csrf(&html);
    let r = c
        .post(e.at("/auth/login"))
        .form(&[("csrf_token", token.as_str()), ("email", "root@example.com"), ("password", "a long enough passphrase")])
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status(), 303);
    (e, c)
}

/// The console's JWKS pane lists the keys and rotates one through a CSRF-checked form.
pub async fn jwks_console_pane(b: Backend) {
    let db = TestDb::new(b).await;
    let (e, c) = console_session(&db).await;
    let page = c.get(e.at("/auth/console/keys")).send().await.expect("GET");
    assert_eq!(page.status(), 200);
    let html = page.text().await.expect("body");
    let kid = jwks(&e).await[0]["kid"].as_str().expect("kid").to_string();
    assert!(html.contains(&kid) && html.contains("JWKS"), "{html}");
    let r = c.post(e.at("/auth/console/keys/rotate")).form(&[("csrf_token", "forged"), ("alg", "RS256")]).send().await.expect("POST");
    assert_eq!(r.status(), 403);
    let r = c
        .post(e.at("/auth/console/keys/rotate"))
        .form(&[("csrf_token", csrf(&html).as_str()), ("alg", "RS256")])
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status(), 303);
    assert_eq!(jwks(&e).await.len(), 2);
    let html = c.get(e.at("/auth/console/keys?notice=key-rotated")).send().await.expect("GET").text().await.expect("body");
    assert_eq!(html.matches("data-status=\"retired\"").count(), 1, "{html}");
}

/// The console's OIDC clients pane: create (the secret shown once, on its own page), rotate,
/// delete; invalid settings come back with the form and a message.
pub async fn clients_console_pane(b: Backend) {
    let db = TestDb::new(b).await;
    let (e, c) = console_session(&db).await;
    let html = c.get(e.at("/auth/console/clients")).send().await.expect("GET").text().await.expect("body");
    assert!(html.contains("New client"), "{html}");
    let token = csrf(&html);
    let form = |name: &'static str, uris: &'static str| {
        vec![
            ("csrf_token", token.clone()),
            ("name", name.to_string()),
            ("redirect_uris", uris.to_string()),
            ("default_scopes", "openid email profile".into()),
            ("token_endpoint_auth_method", "client_secret_basic".into()),
            ("pkce_required", "1".into()),
        ]
    };
    let r = c.post(e.at("/auth/console/clients")).form(&form("Bad", "not a uri")).send().await.expect("POST");
    assert_eq!(r.status(), 422);
    assert!(r.text().await.expect("body").contains("redirect_uris"));
    let r = c
        .post(e.at("/auth/console/clients"))
        .form(&form("Grafana", "https://grafana.example.com/login/generic_oauth\r\nhttp://127.0.0.1:3001/cb"))
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status(), 200);
    assert!(r.headers()["cache-control"].to_str().expect("ascii").contains("no-store"));
    let html = r.text().await.expect("body");
    let grab = |html: &str, id: &str| {
        let at = html.find(&format!("id=\"{id}\">")).unwrap_or_else(|| panic!("no #{id} in {html}")) + id.len() + 6;
        html[at..at + html[at..].find('<').expect("end")].to_string()
    };
    let (client_id, secret) = (grab(&html, "client-id"), grab(&html, "client-secret"));
    assert!(secret.starts_with("cs_"), "{secret}");
    let list = c.get(e.at("/auth/console/clients")).send().await.expect("GET").text().await.expect("body");
    assert!(list.contains(&client_id) && !list.contains(&secret), "the list must not show the secret");
    let r = c
        .post(e.at(&format!("/auth/console/clients/{client_id}/rotate-secret")))
        .form(&[("csrf_token", token.as_str())])
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status(), 200);
    let rotated = grab(&r.text().await.expect("body"), "client-secret");
    assert_ne!(rotated, secret);
    let r =
        c.post(e.at(&format!("/auth/console/clients/{client_id}/delete"))).form(&[("csrf_token", "forged")]).send().await.expect("POST");
    assert_eq!(r.status(), 403);
    let r = c
        .post(e.at(&format!("/auth/console/clients/{client_id}/delete")))
        .form(&[("csrf_token", token.as_str())])
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status(), 303);
    assert_eq!(db.count("SELECT COUNT(*) FROM auth.oidc_clients").await, 0);
}

pub(crate) fn csrf(html: &str) -> String {
    let at = html.find("name=\"csrf_token\" value=\"").expect("csrf field") + "name=\"csrf_token\" value=\"".len();
    html[at..at + html[at..].find('"').expect("quote")].to_string()
}

/// Clients through the admin API: the seed's request, the secret shown once and stored as an
/// HMAC, rotation, PATCH, DELETE, and the refusals.
pub async fn oidc_clients_admin_api(b: Backend) {
    let db = TestDb::new(b).await;
    let e = Setup::new(&db).start().await;
    let key = std::fs::read_to_string(db.data_dir().join("admin-key")).expect("admin key").trim().to_string();
    let c = client();
    let base = e.at("/auth/admin/auth/oidc-clients");
    let call = |method: &str, url: String, body: Option<Value>| {
        let mut rb = c.request(method.parse().expect("method"), url).bearer_auth(&key);
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        async move {
            let r = rb.send().await.expect("call");
            let status = r.status().as_u16();
            let text = r.text().await.expect("body");
            (status, if text.is_empty() { Value::Null } else { serde_json::from_str::<Value>(&text).unwrap_or_else(|_| panic!("{text}")) })
        }
    };

    // The seed's step 2, byte for byte.
    let (status, made) = call(
        "POST",
        base.clone(),
        Some(serde_json::json!({
            "name": "Immich",
            "redirect_uris": ["https://photos.example.com/auth/login", "app.immich:///oauth-callback"],
            "default_scopes": ["openid", "email", "profile"],
            "token_endpoint_auth_method": "client_secret_basic",
            "pkce_required": true
        })),
    )
    .await;
    assert_eq!(status, 201, "{made}");
    let id = made["client_id"].as_str().expect("client_id").to_string();
    let secret = made["client_secret"].as_str().expect("client_secret at the top level").to_string();
    assert!(secret.len() >= 43);
    assert_eq!(made["name"], "Immich");
    assert_eq!(made["grant_types"], serde_json::json!(["authorization_code", "refresh_token"]));
    assert_eq!(made["id_token_signed_response_alg"], "RS256");
    assert_eq!(
        db.count(&format!("SELECT COUNT(*) FROM auth.oidc_clients WHERE secret_hash LIKE '%{}%'", &secret[3..20])).await,
        0,
        "secret stored in clear"
    );

    // Shown once: reads never carry it.
    let (status, got) = call("GET", format!("{base}/{id}"), None).await;
    assert_eq!(status, 200);
    assert!(got.get("client_secret").is_none() && got.get("secret_hash").is_none(), "{got}");
    let (_, list) = call("GET", base.clone(), None).await;
    assert_eq!(list["clients"].as_array().expect("clients").len(), 1);
    assert!(list["clients"][0].get("client_secret").is_none());

    // Rotation: a new secret, shown once.
    let (status, rotated) = call("POST", format!("{base}/{id}/rotate-secret"), None).await;
    assert_eq!(status, 200);
    let new_secret = rotated["client_secret"].as_str().expect("new secret");
    assert_ne!(new_secret, secret);

    // PATCH: settings change, a GET's output can be sent back as is.
    let (status, patched) = call(
        "PATCH",
        format!("{base}/{id}"),
        Some(serde_json::json!({ "skip_consent": true, "post_logout_redirect_uris": ["https://photos.example.com/"] })),
    )
    .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["skip_consent"], true);
    let (status, _) = call("PATCH", format!("{base}/{id}"), Some(patched.clone())).await;
    assert_eq!(status, 200);

    // Public clients: no secret, PKCE mandatory; loopback redirect for a CLI.
    let (status, public) = call(
        "POST",
        base.clone(),
        Some(serde_json::json!({ "name": "CLI", "redirect_uris": ["http://127.0.0.1/callback"], "token_endpoint_auth_method": "none" })),
    )
    .await;
    assert_eq!(status, 201, "{public}");
    assert!(public.get("client_secret").is_none());
    let (status, _) = call("POST", format!("{base}/{}/rotate-secret", public["client_id"].as_str().expect("id")), None).await;
    assert_eq!(status, 422);

    // Refusals.
    for (bad, field) in [
        (serde_json::json!({ "redirect_uris": ["https://a.example/cb"] }), "name"),
        (serde_json::json!({ "name": "x" }), "redirect_uris"),
        (serde_json::json!({ "name": "x", "redirect_uris": ["https://a.example/cb#frag"] }), "redirect_uris"),
        (serde_json::json!({ "name": "x", "redirect_uris": ["/relative"] }), "redirect_uris"),
        (serde_json::json!({ "name": "x", "redirect_uris": ["javascript:alert(1)"] }), "redirect_uris"),
        (
            serde_json::json!({ "name": "x", "redirect_uris": ["https://a.example/cb"], "token_endpoint_auth_method": "none", "pkce_required": false }),
            "pkce_required",
        ),
        (serde_json::json!({ "name": "x", "redirect_uris": ["https://a.example/cb"], "grant_types": ["implicit"] }), "grant_types"),
        (
            serde_json::json!({ "name": "x", "redirect_uris": ["https://a.example/cb"], "token_endpoint_auth_method": "private_key_jwt" }),
            "jwks",
        ),
        (
            serde_json::json!({ "name": "x", "redirect_uris": ["https://a.example/cb"], "id_token_signed_response_alg": "HS256" }),
            "id_token_signed_response_alg",
        ),
        (serde_json::json!({ "name": "x", "redirect_uris": ["https://a.example/cb"], "colour": "blue" }), "colour"),
        (serde_json::json!({ "name": "x", "redirect_uris": "https://a.example/cb" }), "redirect_uris"),
    ] {
        let (status, body) = call("POST", base.clone(), Some(bad.clone())).await;
        assert_eq!(status, 422, "{bad} -> {body}");
        assert_eq!(body["error"], "invalid_field");
        assert!(body["error_description"].as_str().is_some_and(|d| d.contains(field)), "{bad} -> {body}");
    }
    let r = c.post(&base).bearer_auth(&key).header("content-type", "application/json").body("{").send().await.expect("POST");
    assert_eq!(r.status(), 400);
    let r = c.post(&base).json(&serde_json::json!({ "name": "x" })).send().await.expect("POST");
    assert_eq!(r.status(), 401);
    assert_eq!(db.count("SELECT COUNT(*) FROM auth.oidc_clients").await, 2, "refused requests left rows");

    assert_eq!(call("DELETE", format!("{base}/{id}"), None).await.0, 204);
    assert_eq!(call("DELETE", format!("{base}/{id}"), None).await.0, 404);
    assert_eq!(call("GET", format!("{base}/{id}"), None).await.0, 404);
    for action in ["oidc_client.create", "oidc_client.rotate_secret", "oidc_client.update", "oidc_client.delete"] {
        assert!(db.count(&format!("SELECT COUNT(*) FROM auth.audit WHERE action = '{action}'")).await >= 1, "{action}");
    }
}

/// The seed's step 2 as an operator script: `assay.auth` drives the admin API.
pub async fn auth_admin_client(b: Backend) {
    let db = TestDb::new(b).await;
    let e = Setup::new(&db).start().await;
    let key = std::fs::read_to_string(db.data_dir().join("admin-key")).expect("admin key").trim().to_string();
    let script = db.dir.path().join("register.lua");
    std::fs::write(
        &script,
        r#"
local auth = require("assay.auth")
local c = auth.client({
  engine_url = env.get("ENGINE_URL"),
  api_key = env.get("ASSAY_ADMIN_KEY"),
})
local result = c.oidc_clients:create({
  name = "Immich",
  redirect_uris = { "https://photos.example.com/auth/login" },
  default_scopes = { "openid", "email", "profile" },
})
print(result.client_id, result.client_secret)

local got = assert(c.oidc_clients:get(result.client_id))
assert(got.name == "Immich" and got.client_secret == nil)
local rotated = assert(c.oidc_clients:rotate_secret(result.client_id))
assert(rotated.client_secret ~= result.client_secret)
local u = assert(c.users:create({ email = "script@example.com", password = "a long enough passphrase" }))
local page = assert(c.users:list({ q = "script@", limit = 10 }))
assert(#page.users == 1 and page.users[1].id == u.id)
local dup, err = c.users:create({ email = "SCRIPT@example.com" })
assert(dup == nil and err:match("^conflict: "), err)
assert(c.users:delete(u.id) == true)
local keys = assert(c.jwks:list())
assert(#keys.keys >= 1)
local audit = assert(c.audit:list({ action = "oidc_client.create" }))
assert(#audit.entries == 1)
local bad = auth.client({ engine_url = env.get("ENGINE_URL"), api_key = "sk_admin_wrong_key_0000" })
local none, why = bad.users:list()
assert(none == nil and why:match("^unauthorized: "), why)
print("ok")
"#,
    )
    .expect("write script");
    let out = std::process::Command::new(BIN)
        .args(["run", &script.display().to_string()])
        .current_dir(db.dir.path())
        .env_remove("ASSAY_CONFIG")
        .env("ENGINE_URL", &e.url)
        .env("ASSAY_ADMIN_KEY", &key)
        .output()
        .expect("run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    let first = stdout.lines().next().expect("a line");
    let mut parts = first.split('\t');
    let (id, secret) = (parts.next().expect("client_id"), parts.next().expect("client_secret"));
    assert!(!id.is_empty() && secret.starts_with("cs_"), "{first}");
    assert!(stdout.lines().any(|l| l == "ok"), "{stdout}");
    assert_eq!(db.count(&format!("SELECT COUNT(*) FROM auth.oidc_clients WHERE client_id = '{id}'")).await, 1);
}

/// Keys older than key_rotation_days are rotated by the engines themselves, once for a whole
/// fleet; retired keys past key_retention_days are pruned.
pub async fn scheduled_rotation(b: Backend) {
    let db = TestDb::new(b).await;
    let config = Setup::new(&db).write("engine.toml");
    let first = Engine::start_with(&config, db.dir.path()).await;
    let kid = jwks(&first).await[0]["kid"].as_str().expect("kid").to_string();
    drop(first);
    let long_ago = match b {
        Backend::Sqlite => "'2020-01-01T00:00:00.000000Z'",
        Backend::Postgres => "'2020-01-01T00:00:00Z'",
    };
    db.exec(&format!("UPDATE auth.jwks_keys SET created_at = {long_ago}")).await;
    // Two engines start on the same database at once: one rotation between them.
    let (a, b2) = tokio::join!(Engine::start_with(&config, db.dir.path()), Engine::start_with(&config, db.dir.path()));
    let rotated = eventually(std::time::Duration::from_secs(10), || async {
        db.count("SELECT COUNT(*) FROM auth.jwks_keys WHERE status = 'retired'").await == 1
    })
    .await;
    assert!(rotated, "the 2020 key was not rotated");
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(db.count("SELECT COUNT(*) FROM auth.jwks_keys").await, 2, "exactly one new key for the fleet");
    assert_eq!(db.count(&format!("SELECT COUNT(*) FROM auth.jwks_keys WHERE kid = '{kid}' AND status = 'retired'")).await, 1);
    assert_eq!(jwks(&a).await.len(), 2, "the retired key stays published");
    drop((a, b2));
    // Long retired: pruned at the next start.
    db.exec(&format!("UPDATE auth.jwks_keys SET retired_at = {long_ago} WHERE status = 'retired'")).await;
    let e = Engine::start_with(&config, db.dir.path()).await;
    let pruned =
        eventually(std::time::Duration::from_secs(10), || async { db.count("SELECT COUNT(*) FROM auth.jwks_keys").await == 1 }).await;
    assert!(pruned, "the long-retired key was not pruned");
    let keys = jwks(&e).await;
    assert_eq!(keys.len(), 1);
    assert_ne!(keys[0]["kid"], kid.as_str());
}
