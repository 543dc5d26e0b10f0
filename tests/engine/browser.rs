//! The admin console in a real browser: headless Chromium, driven by tests/node/console.mjs
//! (playwright-core), against an engine booted here. The admin comes from the real CLI
//! (`users create --password-stdin --admin`), the target user from the admin API; the script
//! signs in, searches, disables the target, visits Sessions and the Audit log, and checks the
//! disabled user cannot sign in. Needs Debian's Chromium at /usr/bin/chromium and
//! `npm ci --prefix tests/node` (.ci/run does both); without them this case fails, never skips.
//! Screenshots land in `$CARGO_TARGET_DIR/screenshots/console-<backend>/`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::harness::*;

const CHROMIUM: &str = "/usr/bin/chromium";
const ADMIN_EMAIL: &str = "admin@example.com";
const ADMIN_PASSWORD: &str = "correct horse battery staple";
const TARGET_EMAIL: &str = "target.user@example.com";
const TARGET_PASSWORD: &str = "target's long passphrase 42";

/// The whole browser run may take this long (Chromium's start on a loaded machine included).
const NODE_TIMEOUT: Duration = Duration::from_secs(240);

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_path_buf()
}

/// `$CARGO_TARGET_DIR` (relative to the workspace if relative), else the workspace's `target/`.
fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR").filter(|v| !v.is_empty()) {
        Some(dir) => workspace().join(dir),
        None => workspace().join("target"),
    }
}

/// The browser test's prerequisites, or a failure that says how to install them.
fn node_dir_ready() -> PathBuf {
    let dir = workspace().join("tests/node");
    assert!(
        dir.join("node_modules/playwright-core/package.json").is_file(),
        "tests/node is not installed ({} has no playwright-core): run `npm ci --prefix tests/node` \
         (.ci/run does this)",
        dir.join("node_modules").display()
    );
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: install Debian's Chromium (`apt-get install -y chromium`; .ci/run does this)"
    );
    dir
}

pub async fn console_in_browser(b: Backend) {
    let node_dir = node_dir_ready();
    let db = TestDb::new(b).await;
    let e = Setup::new(&db).start().await;
    let config = e.config.display().to_string();

    // The first admin, as an operator makes one: the CLI, on the engine's own config.
    let (code, out, err) = run_cli_stdin(
        &["users", "create", "--email", ADMIN_EMAIL, "--password-stdin", "--admin", "--config", &config],
        db.dir.path(),
        &format!("{ADMIN_PASSWORD}\n"),
    );
    assert_eq!(code, 0, "users create failed:\n{out}{err}");
    assert!(out.contains("with the admin role"), "{out}");

    // The user to disable, through the admin API with the key the engine generated.
    let key = std::fs::read_to_string(db.data_dir().join("admin-key")).expect("admin-key written");
    let key = key.trim();
    let c = client();
    let r = c
        .post(e.at("/auth/admin/auth/users"))
        .bearer_auth(key)
        .json(&serde_json::json!({ "email": TARGET_EMAIL, "password": TARGET_PASSWORD, "display_name": "Target User" }))
        .send()
        .await
        .expect("create target");
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap_or_default());
    let target: serde_json::Value = r.json().await.expect("json");
    let target_id = target["id"].as_str().expect("target id").to_string();
    assert_eq!(target["disabled"], false, "{target}");

    let backend = format!("{b:?}").to_lowercase();
    let shots = target_dir().join("screenshots").join(format!("console-{backend}"));
    let _ = std::fs::remove_dir_all(&shots); // no stale pictures from an earlier run

    let env = [
        ("ASSAY_URL", e.url.clone()),
        ("ADMIN_EMAIL", ADMIN_EMAIL.to_string()),
        ("ADMIN_PASSWORD", ADMIN_PASSWORD.to_string()),
        ("TARGET_EMAIL", TARGET_EMAIL.to_string()),
        ("TARGET_PASSWORD", TARGET_PASSWORD.to_string()),
        ("SCREENSHOT_DIR", shots.display().to_string()),
    ];
    let stdout = run_node_script(&node_dir, "console.mjs", &env, NODE_TIMEOUT, &format!("; screenshots in {}", shots.display()), &e).await;
    println!("{stdout}");

    // What the browser did, seen from the admin API.
    let r = c.get(e.at(&format!("/auth/admin/auth/users/{target_id}"))).bearer_auth(key).send().await.expect("get target");
    assert_eq!(r.status(), 200);
    let user: serde_json::Value = r.json().await.expect("json");
    assert_eq!(user["disabled"], true, "{user}");
    assert_eq!(user["sessions"], serde_json::json!([]), "{user}");
    // The console wrote one user.disable entry, by the admin's session (a user, not a key).
    let r = c.get(e.at("/auth/admin/auth/audit?action=user.disable")).bearer_auth(key).send().await.expect("audit");
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.expect("json");
    let entries = body["entries"].as_array().expect("entries");
    assert_eq!(entries.len(), 1, "{body}");
    assert_eq!(entries[0]["target"], target_id.as_str(), "{body}");
    assert!(entries[0]["actor"].as_str().unwrap_or_default().starts_with("user:"), "{body}");
}
