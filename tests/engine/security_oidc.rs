//! Regression cases for the OpenID provider's security review: a deleted client's tokens die
//! with it, `max_age=0` always asks for a sign-in, and introspection tells a client only about
//! its own tokens unless it is a resource server. Helpers come from `provider.rs` and `oidc.rs`.

use serde_json::{json, Value};

use crate::harness::*;
use crate::oidc::{console_session, csrf};
use crate::provider::*;

/// RFC 7662 introspection of `token` by the client `(id, secret)`.
async fn introspect(e: &Engine, by: (&str, &str), token: &str) -> Value {
    let (status, v, _) = post_form(e, "/auth/oauth2/introspect", Some(by), &[("token", token)]).await;
    assert_eq!(status, 200, "{v}");
    v
}

fn str_of<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str().unwrap_or_else(|| panic!("no {k} in {v}"))
}

/// Review finding 5: deleting a client ends its grants, refresh tokens, consents and pending
/// requests, and its access tokens (user-bound and client-credentials) introspect inactive and
/// fail at userinfo, because a missing grant or client no longer counts as live.
pub async fn deleted_client_tokens_die(b: Backend) {
    let db = TestDb::new(b).await;
    let e = Setup::new(&db).public_port().start().await;
    let key = admin_key(&db);
    make_user(&e, &key, &[]).await;
    let (gone, gone_secret) =
        make_client(&e, &key, json!({ "grant_types": ["authorization_code", "refresh_token", "client_credentials"] })).await;
    let (api, api_secret) = make_client(&e, &key, json!({ "name": "API", "resource_server": true })).await;
    let api = (api.as_str(), api_secret.as_str());

    // Consent remembered, a grant with a refresh token, a machine token, and a parked request.
    let (tok, browser) = tokens(&e, &gone, &gone_secret).await;
    let (at, rt) = (str_of(&tok, "access_token"), str_of(&tok, "refresh_token"));
    let (s, cc, _) = post_form(&e, "/auth/token", Some((&gone, &gone_secret)), &[("grant_type", "client_credentials")]).await;
    assert_eq!(s, 200, "{cc}");
    let cc_at = str_of(&cc, "access_token");
    let (_, challenge) = pkce();
    let (_, parked, _) = browser.get(&auth_url(&e, &gone, &challenge, "&prompt=login")).await;
    assert!(parked.starts_with("/auth/login?login_challenge="), "{parked}");
    for t in [at, rt, cc_at] {
        assert_eq!(introspect(&e, api, t).await["active"], true, "before the delete");
    }
    let r = client().get(e.at("/auth/userinfo")).bearer_auth(at).send().await.expect("userinfo");
    assert_eq!(r.status(), 200);

    let r = client().delete(e.at(&format!("/auth/admin/auth/oidc-clients/{gone}"))).bearer_auth(&key).send().await.expect("DELETE");
    assert_eq!(r.status(), 204);

    for (t, what) in [(at, "access token"), (rt, "refresh token"), (cc_at, "client-credentials token")] {
        assert_eq!(introspect(&e, api, t).await, json!({ "active": false }), "the deleted client's {what} is still active");
    }
    let r = client().get(e.at("/auth/userinfo")).bearer_auth(at).send().await.expect("userinfo");
    assert_eq!(r.status(), 401);
    assert!(r.headers()["www-authenticate"].to_str().expect("ascii").contains("invalid_token"));
    let (s, v, _) =
        post_form(&e, "/auth/token", Some((&gone, &gone_secret)), &[("grant_type", "refresh_token"), ("refresh_token", rt)]).await;
    assert_ne!(s, 200, "the deleted client's refresh token refreshed: {v}");
    for table in ["oidc_grants", "oidc_refresh_tokens", "oidc_authorization_codes", "oidc_consents", "oidc_auth_requests", "oidc_sessions"]
    {
        assert_eq!(
            db.count(&format!("SELECT COUNT(*) FROM auth.{table} WHERE client_id = '{gone}'")).await,
            0,
            "{table} kept rows of the deleted client"
        );
    }
    // The resource server's own standing is untouched.
    assert_eq!(db.count(&format!("SELECT COUNT(*) FROM auth.oidc_clients WHERE client_id = '{}'", api.0)).await, 1);
}

/// Review finding 13: `max_age=0` is `prompt=login` (OIDC Core §3.1.2.1), even within the
/// second the session began; a larger `max_age` that the session meets asks nothing.
pub async fn max_age_zero_forces_login(b: Backend) {
    let db = TestDb::new(b).await;
    let e = Setup::new(&db).public_port().start().await;
    let key = admin_key(&db);
    make_user(&e, &key, &[]).await;
    let (client_id, _) = make_client(&e, &key, json!({ "skip_consent": true })).await;
    let browser = Browser::new(&e);
    let (_, challenge) = pkce();
    let (cb, _) = browser.authorize(&auth_url(&e, &client_id, &challenge, "")).await;
    assert!(param(&cb, "code").is_some(), "{cb}");

    // Straight after the sign-in: the session is not even a second old.
    let (status, loc, _) = browser.get(&auth_url(&e, &client_id, &challenge, "&max_age=0")).await;
    assert_eq!(status, 303);
    assert!(loc.starts_with("/auth/login?login_challenge="), "max_age=0 did not ask for a sign-in: {loc}");
    let (status, loc, _) = browser.get(&auth_url(&e, &client_id, &challenge, "&max_age=3600")).await;
    assert_eq!(status, 303);
    assert!(loc.starts_with(CALLBACK) && param(&loc, "code").is_some(), "a session well within max_age was asked to sign in: {loc}");
    // Signing in again for max_age=0 finishes (the fresh sign-in is not sent round again).
    let (cb, _) = browser.authorize(&auth_url(&e, &client_id, &challenge, "&max_age=0")).await;
    assert!(param(&cb, "code").is_some(), "{cb}");
}

/// Review finding 16: a client introspects its own tokens; another client's only if it is a
/// resource server (`resource_server`, through the admin API and `assay.oidc`); otherwise
/// `{"active": false}`, for access and refresh tokens alike.
pub async fn introspection_by_resource_servers_only(b: Backend) {
    let db = TestDb::new(b).await;
    let e = Setup::new(&db).public_port().start().await;
    let key = admin_key(&db);
    make_user(&e, &key, &[]).await;
    let (owner, owner_secret) = make_client(&e, &key, json!({ "skip_consent": true })).await;
    let (other, other_secret) = make_client(&e, &key, json!({ "name": "Other RP" })).await;
    let (api, api_secret) = make_client(&e, &key, json!({ "name": "API", "resource_server": true })).await;
    let (tok, _) = tokens(&e, &owner, &owner_secret).await;
    let (at, rt) = (str_of(&tok, "access_token"), str_of(&tok, "refresh_token"));

    for t in [at, rt] {
        assert_eq!(introspect(&e, (&other, &other_secret), t).await, json!({ "active": false }), "another client learnt about the token");
        let mine = introspect(&e, (&owner, &owner_secret), t).await;
        assert_eq!((&mine["active"], mine["client_id"].as_str()), (&json!(true), Some(owner.as_str())), "{mine}");
        let rs = introspect(&e, (&api, &api_secret), t).await;
        assert_eq!((&rs["active"], rs["client_id"].as_str()), (&json!(true), Some(owner.as_str())), "{rs}");
    }

    // The field through the admin API: shown on get and list, false by default, PATCHable,
    // and checked.
    let c = client();
    let base = e.at("/auth/admin/auth/oidc-clients");
    let get = |id: String| {
        let rb = c.get(format!("{base}/{id}")).bearer_auth(&key);
        async move { rb.send().await.expect("GET").json::<Value>().await.expect("json") }
    };
    assert_eq!(get(api.clone()).await["resource_server"], true);
    assert_eq!(get(other.clone()).await["resource_server"], false);
    let list: Value = c.get(&base).bearer_auth(&key).send().await.expect("list").json().await.expect("json");
    assert!(list["clients"].as_array().expect("clients").iter().all(|x| x["resource_server"].is_boolean()), "{list}");
    let patch = |body: Value| c.patch(format!("{base}/{other}")).bearer_auth(&key).json(&body).send();
    let r = patch(json!({ "resource_server": "yes" })).await.expect("PATCH");
    assert_eq!(r.status(), 422);
    assert_eq!(r.json::<Value>().await.expect("json")["error_description"], "resource_server: must be true or false");
    let r = patch(json!({ "resource_server": true })).await.expect("PATCH");
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.expect("json")["resource_server"], true);
    assert_eq!(introspect(&e, (&other, &other_secret), at).await["active"], true, "a client made a resource server");
    let r = patch(json!({ "resource_server": false })).await.expect("PATCH");
    assert_eq!(r.status(), 200);
    assert_eq!(introspect(&e, (&other, &other_secret), at).await, json!({ "active": false }));
}

/// The console's client form has the resource-server checkbox, and the list marks one.
pub async fn resource_server_in_console(b: Backend) {
    let db = TestDb::new(b).await;
    let (e, c) = console_session(&db).await;
    let html = c.get(e.at("/auth/console/clients")).send().await.expect("GET").text().await.expect("body");
    assert!(html.contains("name=\"resource_server\""), "{html}");
    let form = [
        ("csrf_token", csrf(&html)),
        ("name", "Photos API".into()),
        ("redirect_uris", "https://api.example.com/cb".into()),
        ("token_endpoint_auth_method", "client_secret_basic".into()),
        ("pkce_required", "1".into()),
        ("resource_server", "1".into()),
    ];
    let r = c.post(e.at("/auth/console/clients")).form(&form).send().await.expect("POST");
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
    assert_eq!(db.count("SELECT COUNT(*) FROM auth.oidc_clients WHERE resource_server = TRUE").await, 1);
    let list = c.get(e.at("/auth/console/clients")).send().await.expect("GET").text().await.expect("body");
    assert!(list.contains("Photos API") && list.contains(">resource server<"), "{list}");
}
