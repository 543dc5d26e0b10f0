//! Regressions for the sandbox findings of the security review: a pattern the budget could
//! not stop (item 1), shared metatables a flow could write (item 9), environment variables a
//! flow could read (item 10) and `string.dump` (item 16).

use std::time::{Duration, Instant};

use crate::harness::*;

const FLOWS: &str = r#"local http = require("assay.http")

-- Quadratic and catastrophic matches: C's string.match never looked at the budget.
http.route("GET", "/auth/sec/catastrophic", function(req)
  local s = ("a"):rep(30000)
  return http.text(tostring(s:match(("(.-)"):rep(6) .. "x")))
end)
http.route("GET", "/auth/sec/catastrophic-pcall", function(req)
  local s = ("a"):rep(30000)
  local ok = pcall(string.find, s, ("(.-)"):rep(6) .. "x")
  return http.text("swallowed: " .. tostring(ok))
end)
http.route("GET", "/auth/sec/trim", function(req)
  local s = "x" .. (" "):rep(40000) .. "y"
  return http.text(#s:match("^%s*(.-)%s*$"))
end)
http.route("GET", "/auth/sec/quick", function(req)
  return http.text((("a,b,c"):gsub(",", ";")))
end)

-- Every table this state keeps across requests must refuse writes.
local modules = { "assay.http", "assay.template", "assay.log", "assay.json", "assay.crypto",
  "assay.env", "assay.users", "assay.password", "assay.session", "assay.audit", "assay.mail",
  "assay.throttle", "assay.admin", "assay.settings", "assay.jwks", "assay.jwt", "assay.oidc",
  "assay.auth" }
http.route("GET", "/auth/sec/locked", function(req)
  local host = req.headers.host -- read before any attempt below could poison the request
  local open = {}
  local function refuses(what, f)
    if pcall(f) then open[#open + 1] = what end
  end
  if getmetatable(req) ~= false then open[#open + 1] = "getmetatable(req)" end
  refuses("req mt field", function() getmetatable(req).__index = function() return "captured" end end)
  refuses("setmetatable(req)", function() setmetatable(req, {}) end)
  for _, name in ipairs(modules) do
    local m = require(name)
    refuses(name, function() m.injected = true end)
    refuses(name .. " mt", function() getmetatable(m).__index = {} end)
  end
  local json = require("assay.json")
  if getmetatable(json.array({})) ~= false then open[#open + 1] = "json.array mt" end
  if getmetatable(http.text("x")) ~= false then open[#open + 1] = "response mt" end
  local res = http.get("http://" .. host .. "/readyz")
  if not res then open[#open + 1] = "no outbound response" end
  if res and getmetatable(res) ~= false then open[#open + 1] = "outbound response mt" end
  if string.dump ~= nil or ("").dump ~= nil then open[#open + 1] = "string.dump" end
  if #open == 0 then return http.text("all locked") end
  return http.text("open: " .. table.concat(open, ", "), 403)
end)

-- Only ASSAY_FLOW_* variables; PATH is surely set, so "refused" is not just "unset".
http.route("GET", "/auth/sec/env", function(req)
  local env = require("assay.env")
  local out = {}
  for _, name in ipairs({ "ASSAY_MASTER_KEY", "PATH", "HOME", "ASSAY_FLOW_SURELY_UNSET" }) do
    local ok, v = pcall(env.get, name)
    out[#out + 1] = name .. "=" .. (ok and tostring(v) or "refused")
  end
  return http.text(table.concat(out, ";"))
end)
"#;

async fn start(db: &TestDb) -> Engine {
    let flows = write_dir(db, "flows", &[("security.lua", FLOWS)]);
    Setup::new(db).flows(&format!("dir = \"{}\"\nbudget_ms = 1500", flows.display())).start().await
}

/// A pattern that would run for minutes answers 500 at the budget, even through `pcall`, and
/// the engine keeps answering meanwhile.
pub async fn sandbox_pattern_budget(b: Backend) {
    let db = TestDb::new(b).await;
    let e = start(&db).await;
    // Before the Rust matcher these did not answer at all within the timeout.
    let c = reqwest::Client::builder().timeout(Duration::from_secs(20)).build().expect("client");
    for path in ["/auth/sec/catastrophic", "/auth/sec/catastrophic-pcall", "/auth/sec/trim"] {
        let started = Instant::now();
        let r = c.get(e.at(path)).send().await.unwrap_or_else(|err| panic!("{path}: {err}"));
        let took = started.elapsed();
        let status = r.status();
        let body = r.text().await.expect("text");
        eprintln!("{path}: {status} after {took:?}");
        assert_eq!(status, 500, "{path}: {body}");
        assert!(took < Duration::from_secs(6), "{path} took {took:?}");
    }
    let logs = e.wait_log(&["budget"]).await;
    assert!(logs.contains("budget"), "{logs}");

    // While a match is stuck, /readyz still answers at once.
    let stuck = tokio::spawn({
        let (c, url) = (c.clone(), e.at("/auth/sec/catastrophic"));
        async move { c.get(url).send().await.map(|r| r.status().as_u16()) }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    let r = c.get(e.at("/readyz")).send().await.expect("readyz");
    let took = started.elapsed();
    eprintln!("/readyz during a stuck match: {} after {took:?}", r.status());
    assert_eq!(r.status(), 200);
    assert!(took < Duration::from_secs(1), "/readyz waited {took:?} on a stuck match");
    assert_eq!(stuck.await.expect("join").expect("stuck"), 500);
    let r = c.get(e.at("/auth/sec/quick")).send().await.expect("quick");
    assert_eq!(r.text().await.expect("text"), "a;b;c");
}

/// No table shared across requests can be written or reached through `getmetatable`, and
/// `string.dump` is gone.
pub async fn sandbox_shared_tables_locked(b: Backend) {
    let db = TestDb::new(b).await;
    let e = start(&db).await;
    let r = client().get(e.at("/auth/sec/locked")).send().await.expect("locked");
    let status = r.status();
    let body = r.text().await.expect("text");
    assert_eq!((status.as_u16(), body.as_str()), (200, "all locked"), "{}", e.logs());
}

/// A flow reads only `ASSAY_FLOW_*` variables; an operator script still reads any.
pub async fn sandbox_env_for_flows(b: Backend) {
    let db = TestDb::new(b).await;
    let e = start(&db).await;
    let r = client().get(e.at("/auth/sec/env")).send().await.expect("env");
    let body = r.text().await.expect("text");
    assert_eq!(body, "ASSAY_MASTER_KEY=refused;PATH=refused;HOME=refused;ASSAY_FLOW_SURELY_UNSET=nil");

    let script = db.dir.path().join("env.lua");
    std::fs::write(
        &script,
        r#"local path = env.get("PATH")
assert(type(path) == "string" and #path > 0, "PATH unreadable")
assert(require("assay.env").get("PATH") == path)
print("script env ok")
"#,
    )
    .expect("write");
    let (rc, out, err) = run_cli(&["run", &script.display().to_string()], db.dir.path());
    assert_eq!(rc, 0, "{out}{err}");
    assert!(out.contains("script env ok"), "{out}{err}");
}
