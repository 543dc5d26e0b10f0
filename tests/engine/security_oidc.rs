//! Regression cases for the OpenID provider's security review. Helpers come from
//! `provider.rs`.

use serde_json::json;

use crate::harness::*;
use crate::provider::*;

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
