//! The OpenID provider as an independent relying party sees it: tests/node/oidc_rp.mjs drives
//! the real engine with `openid-client` (discovery, code + PKCE through the real login and
//! consent pages, ID token and userinfo, refresh rotation with its grace window and reuse
//! detection, introspection, revocation, client_credentials, private_key_jwt, RP-initiated and
//! back-channel logout, and the refusals). The engine listens on a port picked beforehand and
//! announces it as `public_url`, so the issuer is `http://127.0.0.1:PORT/auth`, the address
//! the client reaches. Needs `npm ci --prefix tests/node` (.ci/run does it); without it this
//! case fails, never skips.

use std::path::{Path, PathBuf};
use std::process::Stdio;
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

    let mut node = tokio::process::Command::new("node");
    node.arg("oidc_rp.mjs")
        .current_dir(&node_dir)
        .env("ASSAY_URL", &base)
        .env("ADMIN_KEY", key.trim())
        .env("ISSUER", &issuer)
        .env("GRACE_SECS", GRACE_SECS.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let child = node.spawn().unwrap_or_else(|err| panic!("cannot run `node` (is Node.js installed?): {err}"));
    let out = match tokio::time::timeout(NODE_TIMEOUT, child.wait_with_output()).await {
        Ok(out) => out.expect("wait for node"),
        Err(_) => panic!("node tests/node/oidc_rp.mjs did not finish within {NODE_TIMEOUT:?} (killed)\n--- engine log ---\n{}", e.logs()),
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "node tests/node/oidc_rp.mjs failed ({})\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}\n--- engine log ---\n{}",
        out.status,
        e.logs()
    );
    println!("{stdout}");

    // What the client did, seen from the database: the five clients it registered, and revoked
    // refresh tokens (the family whose spent token came back after the grace window, and the
    // one revoked at the revocation endpoint).
    assert_eq!(db.count("SELECT COUNT(*) FROM auth.oidc_clients").await, 5, "{stdout}");
    let revoked = db.count("SELECT COUNT(*) FROM auth.oidc_refresh_tokens WHERE revoked = TRUE").await;
    assert!(revoked >= 2, "{revoked} revoked refresh tokens after reuse detection and a revocation\n{stdout}");
}
