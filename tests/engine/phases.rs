//! Phases by kind of run: the claims hook may read the engine's state but never change it.

use serde_json::json;

use crate::harness::*;
use crate::provider::{admin_key, jwt_parts, make_client, make_user, post_form};

/// An operator's `claims.lua` that reads users (allowed) and tries to write (refused), and
/// reports both in a claim; the write never happens.
const CLAIMS: &str = r#"
local users = require("assay.users")
local audit = require("assay.audit")
return function(ctx)
  local page = users.list({ limit = 5 })
  local wrote, err = pcall(users.create, { email = "hook@example.com" })
  local logged = pcall(audit.append, { action = "hook.wrote" })
  return {
    read_users = page and #page.users or -1,
    write_refused = (not wrote) and tostring(err):match("cannot be called in the claims hook") ~= nil,
    audit_refused = not logged,
  }
end
"#;

pub async fn claims_hook_reads_but_cannot_write(b: Backend) {
    let db = TestDb::new(b).await;
    let flows = write_dir(&db, "flows", &[("claims.lua", CLAIMS)]);
    let e = Setup::new(&db).flows(&format!("dir = \"{}\"", flows.display())).start().await;
    let key = admin_key(&db);
    make_user(&e, &key, &[]).await;
    let (client_id, secret) = make_client(&e, &key, json!({ "grant_types": ["client_credentials"] })).await;
    let (status, tokens, _) = post_form(&e, "/auth/token", Some((&client_id, &secret)), &[("grant_type", "client_credentials")]).await;
    assert_eq!(status, 200, "{tokens}");
    let (_, claims) = jwt_parts(tokens["access_token"].as_str().expect("access_token"));
    assert_eq!(claims["read_users"], json!(1), "{claims}");
    assert_eq!(claims["write_refused"], json!(true), "{claims}");
    assert_eq!(claims["audit_refused"], json!(true), "{claims}");
    assert_eq!(db.count("SELECT COUNT(*) FROM auth.users WHERE email = 'hook@example.com'").await, 0);
    assert_eq!(db.count("SELECT COUNT(*) FROM auth.audit WHERE action = 'hook.wrote'").await, 0);
    // The request's own phase came back: the same engine still serves handlers that write.
    let (status, _, _) = post_form(&e, "/auth/token", Some((&client_id, &secret)), &[("grant_type", "client_credentials")]).await;
    assert_eq!(status, 200);
    let r = client().get(e.at("/auth/login")).send().await.expect("GET");
    assert_eq!(r.status(), 200);
}
