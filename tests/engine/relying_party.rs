//! The OpenID provider as an independent relying party sees it: tests/node/oidc_rp.mjs drives
//! the real engine with `openid-client` (discovery, code + PKCE through the real login and
//! consent pages, ID token and userinfo, refresh rotation with its grace window and reuse
//! detection, introspection, revocation, client_credentials, private_key_jwt, RP-initiated and
//! back-channel logout, and the refusals). The engine listens on a port picked beforehand and
//! announces it as `public_url`, so the issuer is `http://127.0.0.1:PORT/auth`, the address
//! the client reaches. Needs `npm ci --prefix tests/node` (.ci/run does it); without it this
//! case fails, never skips.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::harness::*;

/// The whole client run may take this long (it sleeps past a 2 s grace window once).
const NODE_TIMEOUT: Duration = Duration::from_secs(240);
const GRACE_SECS: u64 = 2;

fn node_dir_ready() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").join("tests/node");
    assert!(
        dir.join("node_modules/openid-client/package.json").is_file(),
        "tests/node is not installed ({} has no openid-client): run `npm ci --prefix tests/node` \
         (.ci/run does this)",
        dir.join("node_modules").display()
    );
    dir
}

pub async fn oidc_relying_party(b: Backend) {
    let node_dir = node_dir_ready();
    let db = TestDb::new(b).await;
    let setup = Setup::new(&db).public_port().extra(&format!("[auth.oidc_provider]\nrefresh_grace_secs = {GRACE_SECS}"));
    let port = setup.port.expect("public_port picked a port");
    let e = setup.start().await;
    let base = format!("http://127.0.0.1:{port}");
    assert_eq!(e.url, base, "the engine listens where public_url says");
    let issuer = format!("{base}/auth");
    let key = std::fs::read_to_string(db.data_dir().join("admin-key")).expect("admin-key written");

    let env = [
        ("ASSAY_URL", base.clone()),
        ("ADMIN_KEY", key.trim().to_string()),
        ("ISSUER", issuer.clone()),
        ("GRACE_SECS", GRACE_SECS.to_string()),
    ];
    let stdout = run_node_script(&node_dir, "oidc_rp.mjs", &env, NODE_TIMEOUT, "", &e).await;
    println!("{stdout}");

    // What the client did, seen from the database: the five clients it registered, and revoked
    // refresh tokens (the family whose spent token came back after the grace window, and the
    // one revoked at the revocation endpoint).
    assert_eq!(db.count("SELECT COUNT(*) FROM auth.oidc_clients").await, 5, "{stdout}");
    let revoked = db.count("SELECT COUNT(*) FROM auth.oidc_refresh_tokens WHERE revoked = TRUE").await;
    assert!(revoked >= 2, "{revoked} revoked refresh tokens after reuse detection and a revocation\n{stdout}");
}
