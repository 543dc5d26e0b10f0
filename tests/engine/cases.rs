//! The cases. Each takes the backend and runs unchanged on SQLite and PostgreSQL.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::harness::*;

/// With no config file at all: 127.0.0.1:3000, SQLite under ./data, an admin key written
/// once. (On PostgreSQL the same minimal start: a config with nothing but `[backend]`.)
pub async fn serve_with_no_config(b: Backend) {
    let db = TestDb::new(b).await;
    let mut engine = match b {
        Backend::Sqlite => {
            let _port = crate::DEFAULT_PORT.lock().await;
            wait_port_free(3000).await;
            let mut e = Engine::spawn(&["serve"], db.dir.path(), std::path::Path::new("")).await;
            assert_eq!(e.url, "http://127.0.0.1:3000");
            let out = e.stdout.lock().expect("lock").clone();
            assert!(out.contains("console: http://127.0.0.1:3000/auth/console"), "{out}");
            assert!(out.contains("data/admin-key"), "{out}");
            check_fresh_engine(&db, &e).await;
            e.signal("TERM");
            assert_eq!(e.wait_exit(Duration::from_secs(10)).await, Some(0));
            return;
        }
        Backend::Postgres => {
            let config = db.dir.path().join("engine.toml");
            std::fs::write(&config, db.backend_toml() + "[server]\nbind_addr = \"127.0.0.1:0\"\n").expect("write");
            Engine::start_with(&config, db.dir.path()).await
        }
    };
    check_fresh_engine(&db, &engine).await;
    engine.signal("TERM");
    assert_eq!(engine.wait_exit(Duration::from_secs(10)).await, Some(0));
}

async fn check_fresh_engine(db: &TestDb, e: &Engine) {
    let c = client();
    let r = c.get(e.at("/readyz")).send().await.expect("readyz");
    assert_eq!(r.status(), 200);
    // The generated admin key: in the data dir, mode 0600, only its SHA-256 in the database.
    let key_file = db.data_dir().join("admin-key");
    let key = std::fs::read_to_string(&key_file).expect("admin-key written");
    let key = key.trim();
    assert!(key.starts_with("sk_admin_") && key.len() > 40, "{key}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    let hash = hex::encode(Sha256::digest(key.as_bytes()));
    assert_eq!(db.count(&format!("SELECT COUNT(*) FROM engine.admin_api_keys WHERE key_hash = '{hash}'")).await, 1);
    assert_eq!(db.count(&format!("SELECT COUNT(*) FROM engine.admin_api_keys WHERE key_hash = '{key}'")).await, 0);
    let r = c.get(e.at("/auth/hello")).send().await.expect("hello");
    assert_eq!(r.status(), 200);
    assert!(r.text().await.expect("body").contains("Hello, world!"));
}

async fn wait_port_free(port: u16) {
    assert!(
        eventually(Duration::from_secs(30), || async move { std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() }).await,
        "port {port} stayed busy"
    );
}

/// A second start neither rewrites the key file nor adds a key.
pub async fn admin_key_written_once(b: Backend) {
    let db = TestDb::new(b).await;
    let setup = Setup::new(&db);
    let first = setup.start().await;
    let key = std::fs::read_to_string(db.data_dir().join("admin-key")).expect("key");
    drop(first);
    let second = setup.start().await;
    assert_eq!(std::fs::read_to_string(db.data_dir().join("admin-key")).expect("key"), key);
    assert_eq!(db.count("SELECT COUNT(*) FROM engine.admin_api_keys").await, 1);
    let out = second.stdout.lock().expect("lock").clone();
    assert!(!out.contains("written once to"), "{out}");
    // With keys in the config, nothing is generated.
    let db2 = TestDb::new(b).await;
    let _e = Setup::new(&db2).extra("[auth]\nadmin_api_keys = [\"sk_admin_configured_0123456789\"]").start().await;
    assert!(!db2.data_dir().join("admin-key").exists());
    assert_eq!(db2.count("SELECT COUNT(*) FROM engine.admin_api_keys").await, 0);
}

/// `/healthz` is up; `/readyz` follows the database and the migration ledger.
pub async fn readiness(b: Backend) {
    let db = TestDb::new(b).await;
    let e = Setup::new(&db).start().await;
    let c = client();
    let r = c.get(e.at("/healthz")).send().await.expect("healthz");
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("x-request-id").is_some());
    let r = c.get(e.at("/readyz")).send().await.expect("readyz");
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<serde_json::Value>().await.expect("json")["status"], "ready");
    // Forget a migration: no longer ready, and the body says why.
    db.exec("DELETE FROM engine.migrations").await;
    let r = c.get(e.at("/readyz")).send().await.expect("readyz");
    assert_eq!(r.status(), 503);
    let body: serde_json::Value = r.json().await.expect("json");
    assert!(body["reason"].as_str().unwrap_or_default().contains("migrations"), "{body}");
    assert_eq!(c.get(e.at("/healthz")).send().await.expect("healthz").status(), 200);
    assert_eq!(c.post(e.at("/readyz")).send().await.expect("post").status(), 405);
}

/// Bad configs stop start-up with exit code 2 and name the key and the line.
pub async fn config_errors(b: Backend) {
    let db = TestDb::new(b).await;
    let cases: &[(&str, &str)] = &[
        ("[server]\nbind_addr = \"127.0.0.1:0\"\nbnd_addr = \"x\"\n", ":3: server.bnd_addr: unknown field"),
        ("auto_enable_modules = [\"auth\"]\n\n[server]\nmax_body_bytes = \"big\"\n", ":4: server.max_body_bytes:"),
        ("[backend]\ntype = \"postgres\"\n", "backend.url: missing required value"),
        ("[backend]\ntype = \"mysql\"\n", ":2: backend.type:"),
        ("[server]\npublic_url = \"ftp://x\"\n", ":2: server.public_url:"),
        ("[auth]\nissuer = \"${ASSAY_TEST_SURELY_UNSET}\"\n", "ASSAY_TEST_SURELY_UNSET"),
        ("auto_enable_modules = [\"nope\"]\n", "unknown module"),
        ("[server\n", ":1"),
    ];
    for (i, (text, expect)) in cases.iter().enumerate() {
        let path = db.dir.path().join(format!("bad{i}.toml"));
        std::fs::write(&path, text).expect("write");
        for cmd in ["serve", "check-config"] {
            let (code, _out, err) = run_cli(&[cmd, "--config", &path.display().to_string()], db.dir.path());
            assert_eq!(code, 2, "{cmd} with {text:?}: {err}");
            assert!(err.contains(expect), "{cmd} with {text:?}: expected {expect:?} in {err:?}");
            assert!(err.contains(&format!("bad{i}.toml")), "{err}");
        }
    }
    // The backend's own good config passes check-config.
    let good = Setup::new(&db).write("good.toml");
    let (code, out, err) = run_cli(&["check-config", "--config", &good.display().to_string()], db.dir.path());
    assert_eq!(code, 0, "{out}{err}");
}

/// engine.toml.example documents every key; it must load.
pub async fn example_config_loads(b: Backend) {
    let db = TestDb::new(b).await;
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../engine.toml.example");
    let out = std::process::Command::new(BIN)
        .args(["check-config", "--config", example])
        .env("ASSAY_ADMIN_KEY", "sk_admin_from_the_environment_0123")
        .env("ASSAY_MASTER_KEY", "0123456789abcdef0123456789abcdef0123456789abcdef")
        .env("ASSAY_PASSWORD_PEPPER", "pepper-from-the-environment")
        .env("ASSAY_SMTP_PASSWORD", "smtp-secret")
        .env("DATABASE_URL", db.pg_url.clone().unwrap_or_else(|| "postgres://localhost/assay".into()))
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// A flow and a template of the same name in the operator's folders replace the bundled ones;
/// new files add routes.
pub async fn flow_and_template_override(b: Backend) {
    let db = TestDb::new(b).await;
    let flows = write_dir(
        &db,
        "flows",
        &[
            (
                "hello.lua",
                r#"local http = require("assay.http")
local template = require("assay.template")
http.route("GET", "/auth/hello", function(req)
  return http.html((template.render("hello.html", { name = "override" })))
end)
"#,
            ),
            (
                "extra/added.lua",
                r#"local http = require("assay.http")
http.route("GET", "/auth/added/{id}", function(req)
  return http.json({ id = req.params.id, q = req.query.q })
end)
"#,
            ),
        ],
    );
    let templates = write_dir(&db, "templates", &[("hello.html", "<p>custom {{ name }}</p>")]);
    let e = Setup::new(&db)
        .flows(&format!("dir = \"{}\"", flows.display()))
        .extra(&format!("[templates]\ndir = \"{}\"", templates.display()))
        .start()
        .await;
    let c = client();
    let body = c.get(e.at("/auth/hello")).send().await.expect("get").text().await.expect("text");
    assert_eq!(body, "<p>custom override</p>");
    let r = c.get(e.at("/auth/added/a%20b?q=1")).send().await.expect("get");
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<serde_json::Value>().await.expect("json"), serde_json::json!({"id": "a b", "q": "1"}));
}

const FAILING_FLOWS: &str = r#"local http = require("assay.http")
http.route("GET", "/auth/t/boom", function(req) error("kaboom in the flow") end)
http.route("GET", "/auth/admin/auth/boom", function(req) error("kaboom for an API") end)
http.route("GET", "/auth/t/spin", function(req) while true do end end)
http.route("GET", "/auth/t/spin-pcall", function(req)
  while true do pcall(function() while true do end end) end
end)
http.route("GET", "/auth/t/busy", function(req)
  local t = os.clock()
  while os.clock() - t < 0.3 do end
  return http.text("done")
end)
http.route("GET", "/auth/t/ok", function(req) return http.text("ok") end)
http.route("GET", "/auth/t/nothing", function(req) end)
"#;

/// A Lua error is a 500 carrying the request id, logged with its traceback; a runaway flow is
/// stopped at its budget even through pcall; neither stops the server nor delays others.
pub async fn lua_error_and_runaway(b: Backend) {
    let db = TestDb::new(b).await;
    let flows = write_dir(&db, "flows", &[("failing.lua", FAILING_FLOWS)]);
    // A budget long enough that "served while another flow spins" and "served after it" are
    // far apart even on a loaded two-core machine.
    let e = Setup::new(&db).flows(&format!("dir = \"{}\"\nbudget_ms = 1500", flows.display())).start().await;
    let c = client();

    let r = c.get(e.at("/auth/t/boom")).send().await.expect("boom");
    assert_eq!(r.status(), 500);
    let id = r.headers()["x-request-id"].to_str().expect("id").to_string();
    let body = r.text().await.expect("text");
    assert!(body.contains(&id) && body.contains("<html"), "{body}");
    assert!(!body.contains("kaboom"), "internal detail leaked to the client: {body}");
    let logs = e.wait_log(&["kaboom in the flow", &id, "failing.lua:2"]).await;
    assert!(logs.contains("kaboom in the flow") && logs.contains(&id), "{logs}");
    assert!(logs.contains("failing.lua:2"), "no traceback position in the log: {logs}");

    let r = c.get(e.at("/auth/admin/auth/boom")).send().await.expect("api boom");
    assert_eq!(r.status(), 500);
    let j: serde_json::Value = r.json().await.expect("json");
    assert_eq!(j["error"], "server_error");

    assert_eq!(c.get(e.at("/auth/t/nothing")).send().await.expect("nothing").status(), 500);

    for path in ["/auth/t/spin", "/auth/t/spin-pcall"] {
        let started = Instant::now();
        let r = c.get(e.at(path)).send().await.expect("spin");
        assert_eq!(r.status(), 500, "{path}");
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(1400) && took < Duration::from_secs(6), "{path} took {took:?}");
    }
    let logs = e.wait_log(&["budget"]).await;
    assert!(logs.contains("budget"), "{logs}");

    // While one request spins, others are served at once.
    let spin = tokio::spawn({
        let url = e.at("/auth/t/spin");
        async move { client().get(url).send().await.map(|r| r.status().as_u16()) }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let started = Instant::now();
    let r = c.get(e.at("/auth/t/ok")).send().await.expect("ok");
    assert_eq!(r.status(), 200);
    assert!(started.elapsed() < Duration::from_millis(1000), "a request waited on another's Lua: {:?}", started.elapsed());
    assert_eq!(spin.await.expect("join").expect("spin"), 500);
    assert_eq!(c.get(e.at("/auth/hello")).send().await.expect("hello").status(), 200);
}

/// The sandbox refuses what is not on its allow-list, and nothing leaks between requests.
pub async fn sandbox(b: Backend) {
    let db = TestDb::new(b).await;
    let flows = write_dir(
        &db,
        "flows",
        &[
            (
                "sandbox.lua",
                r#"local http = require("assay.http")
local attempts = {
  io = function() return io.open("/etc/passwd") end,
  os_execute = function() return os.execute("true") end,
  load = function() return load("return 1") end,
  dofile = function() return dofile("/etc/passwd") end,
  debug = function() return debug.getinfo(1) end,
  package = function() return package.loaded end,
  rawset = function() return rawset(_ENV, "x", 1) end,
  global = function() leaked = 1 end,
  string_mt = function() getmetatable("").__index.upper = nil end,
  patch_stdlib = function() http.html = nil end,
  patch_string = function() string.upper = nil end,
  require_other = function() return require("os") end,
}
http.route("GET", "/auth/sb/{what}", function(req)
  local ok, err = pcall(attempts[req.params.what])
  if ok then return http.text("allowed", 200) end
  return http.text(tostring(err), 403)
end)
local counter = 0
http.route("GET", "/auth/sb-count", function(req)
  counter = counter + 1
  return http.text(tostring(counter))
end)
http.route("GET", "/auth/sb-phase", function(req)
  http.route("GET", "/auth/late", function() end)
end)
"#,
            ),
            // Handlers that reach no table are kept by each Lua state across requests; assigning an
            // upvalue (directly, through a file-level function, or before failing) must still not
            // reach the next request.
            (
                "keep_count.lua",
                r#"local http = require("assay.http")
local count = 0
local function bump() count = count + 1; return count end
http.route("GET", "/auth/keep/count", function(req) return http.text(tostring(bump())) end)
"#,
            ),
            (
                "keep_last.lua",
                r#"local http = require("assay.http")
local last = "none"
http.route("GET", "/auth/keep/last", function(req)
  local prev = last
  last = req.query.v
  return http.text(prev)
end)
"#,
            ),
            (
                "keep_fail.lua",
                r#"local http = require("assay.http")
local n = 0
http.route("GET", "/auth/keep/fail", function(req)
  n = n + 1
  if req.query.fail then error("failing on purpose") end
  return http.text(tostring(n))
end)
"#,
            ),
        ],
    );
    let e = Setup::new(&db).flows(&format!("dir = \"{}\"", flows.display())).start().await;
    let c = client();
    let text = |path: String| {
        let c = c.clone();
        async move { c.get(path).send().await.expect("get").text().await.expect("text") }
    };
    for i in 0..5 {
        assert_eq!(text(e.at("/auth/keep/count")).await, "1", "a file-level local leaked (request {i})");
        assert_eq!(text(e.at(&format!("/auth/keep/last?v=secret{i}"))).await, "none", "a request's value reached the next");
        assert_eq!(c.get(e.at("/auth/keep/fail?fail=1")).send().await.expect("get").status(), 500);
        assert_eq!(text(e.at("/auth/keep/fail")).await, "1", "a failed request's assignment leaked");
    }
    for what in [
        "io",
        "os_execute",
        "load",
        "dofile",
        "debug",
        "package",
        "rawset",
        "global",
        "string_mt",
        "patch_stdlib",
        "patch_string",
        "require_other",
    ] {
        let r = c.get(e.at(&format!("/auth/sb/{what}"))).send().await.expect("get");
        let status = r.status();
        let body = r.text().await.expect("text");
        assert_eq!(status, 403, "{what} was allowed: {body}");
    }
    let r = c.get(e.at("/auth/sb/global")).send().await.expect("get").text().await.expect("text");
    assert!(r.contains("undeclared global 'leaked'"), "{r}");
    for _ in 0..20 {
        let r = c.get(e.at("/auth/sb-count")).send().await.expect("get").text().await.expect("text");
        assert_eq!(r, "1", "state leaked from one request to the next");
    }
    assert_eq!(c.get(e.at("/auth/sb-phase")).send().await.expect("get").status(), 500);
    let logs = e.wait_log(&["http.route cannot be called in a request handler"]).await;
    assert!(logs.contains("http.route cannot be called in a request handler"), "{logs}");
}

/// `engine.modules` switches the auth module at run time; other routes keep serving.
pub async fn module_switching(b: Backend) {
    let db = TestDb::new(b).await;
    let setup = Setup::new(&db);
    let e = setup.start().await;
    let c = client();
    let config = e.config.display().to_string();
    assert_eq!(c.get(e.at("/auth/hello")).send().await.expect("get").status(), 200);
    let (code, out, err) = run_cli(&["modules", "disable", "auth", "--config", &config], db.dir.path());
    assert_eq!(code, 0, "{out}{err}");
    let off = status_becomes(&e.at("/auth/hello"), 404, Duration::from_secs(6)).await;
    assert!(off, "auth routes still served after disabling the module");
    assert_eq!(c.get(e.at("/healthz")).send().await.expect("get").status(), 200);
    let (_, out, _) = run_cli(&["modules", "list", "--config", &config], db.dir.path());
    assert!(out.contains("auth\tdisabled"), "{out}");
    // A restart keeps the operator's switch even though auto_enable_modules names auth.
    drop(e);
    let e = setup.start().await;
    assert_eq!(c.get(e.at("/auth/hello")).send().await.expect("get").status(), 404);
    run_cli(&["modules", "enable", "auth", "--config", &config], db.dir.path());
    let on = status_becomes(&e.at("/auth/hello"), 200, Duration::from_secs(6)).await;
    assert!(on, "auth routes not back after enabling the module");
    let (code, _, err) = run_cli(&["modules", "enable", "nope", "--config", &config], db.dir.path());
    assert_ne!(code, 0);
    assert!(err.contains("unknown module"), "{err}");
}

/// Migrations run twice are a no-op; two engines migrating one database at once apply each
/// migration exactly once.
pub async fn migrations_twice_and_concurrently(b: Backend) {
    let db = TestDb::new(b).await;
    let config = Setup::new(&db).write("engine.toml").display().to_string();
    let (code, out, err) = run_cli(&["migrate", "--config", &config], db.dir.path());
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("applied 0001 engine"), "{out}");
    let (code, out, _) = run_cli(&["migrate", "--config", &config], db.dir.path());
    assert_eq!(code, 0);
    assert!(out.contains("0 applied"), "{out}");

    let db = TestDb::new(b).await;
    let config = Setup::new(&db).write("engine.toml").display().to_string();
    let dir = db.dir.path().to_path_buf();
    let runs: Vec<_> = (0..4)
        .map(|_| {
            let (config, dir) = (config.clone(), dir.clone());
            std::thread::spawn(move || run_cli(&["migrate", "--config", &config], &dir))
        })
        .collect();
    let mut applied = 0;
    for r in runs {
        let (code, out, err) = r.join().expect("join");
        assert_eq!(code, 0, "{out}{err}");
        applied += out.matches("applied 0001").count();
    }
    assert_eq!(applied, 1, "a migration was applied by more than one engine");
    assert_eq!(db.count("SELECT COUNT(*) FROM engine.migrations WHERE version = 1").await, 1);

    // Two engines starting at once on a fresh database both come up ready.
    let db = TestDb::new(b).await;
    let s1 = Setup::new(&db);
    let p1 = s1.write("a.toml");
    let p2 = s1.write("b.toml");
    let (e1, e2) = tokio::join!(Engine::start_with(&p1, db.dir.path()), Engine::start_with(&p2, db.dir.path()));
    for e in [&e1, &e2] {
        assert_eq!(client().get(e.at("/readyz")).send().await.expect("readyz").status(), 200);
    }
    assert_eq!(db.count("SELECT COUNT(*) FROM engine.admin_api_keys").await, 1);
}

/// Bodies over `max_body_bytes` get 413, declared or streamed.
pub async fn body_limit(b: Backend) {
    let db = TestDb::new(b).await;
    let flows = write_dir(
        &db,
        "flows",
        &[(
            "echo.lua",
            r#"local http = require("assay.http")
http.route("POST", "/auth/echo", function(req)
  return http.json({ size = #req.body, form = req.form })
end)
http.route("POST", "/auth/admin/auth/echo", function(req)
  local v, err = req:json()
  if not v then return http.json({ error = "invalid_request", error_description = err }, 400) end
  return http.json(v)
end)
"#,
        )],
    );
    let e = Setup::new(&db).server("max_body_bytes = 1024").flows(&format!("dir = \"{}\"", flows.display())).start().await;
    let c = client();
    let r = c.post(e.at("/auth/echo")).body(vec![b'a'; 1024]).send().await.expect("post");
    assert_eq!(r.status(), 200);
    let r = c.post(e.at("/auth/echo")).body(vec![b'a'; 1025]).send().await.expect("post");
    assert_eq!(r.status(), 413);
    assert!(r.text().await.expect("text").contains("larger than 1024 bytes"));
    // Streamed (chunked, no Content-Length): still refused.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = (0..8).map(|_| Ok(vec![b'b'; 512])).collect();
    let stream = futures_util::stream::iter(chunks);
    let r = c.post(e.at("/auth/echo")).body(reqwest::Body::wrap_stream(stream)).send().await.expect("post");
    assert_eq!(r.status(), 413);
    for _ in 0..20 {
        // Answered with a 413, never a reset, however the upload and the answer interleave.
        let r = c.post(e.at("/auth/admin/auth/echo")).body(vec![b'{'; 200_000]).send().await.expect("post");
        assert_eq!(r.status(), 413);
    }
    let r = c.post(e.at("/auth/admin/auth/echo")).body(vec![b'{'; 2000]).send().await.expect("post");
    assert_eq!(r.status(), 413);
    assert_eq!(r.json::<serde_json::Value>().await.expect("json")["error"], "payload_too_large");
    // Forms and JSON reach the flow.
    let r = c.post(e.at("/auth/echo")).form(&[("a", "1"), ("b", "x y")]).send().await.expect("post");
    assert_eq!(r.json::<serde_json::Value>().await.expect("json")["form"], serde_json::json!({"a": "1", "b": "x y"}));
    let r = c.post(e.at("/auth/admin/auth/echo")).body("{not json").send().await.expect("post");
    assert_eq!(r.status(), 400);
    let j: serde_json::Value = r.json().await.expect("json");
    // The flow put the error table itself in the body: its code and message, as JSON.
    assert_eq!(j["error_description"]["code"], "bad_json", "{j}");
    assert!(!j["error_description"]["message"].as_str().unwrap_or_default().is_empty(), "{j}");
}

/// Request ids, 404/405, HEAD, JSON vs HTML errors.
pub async fn http_basics(b: Backend) {
    let db = TestDb::new(b).await;
    let e = Setup::new(&db).start().await;
    let c = client();
    let r = c.get(e.at("/auth/nope")).send().await.expect("get");
    assert_eq!(r.status(), 404);
    assert!(r.headers()["content-type"].to_str().expect("ct").starts_with("text/html"));
    let r = c.get(e.at("/auth/nope")).header("accept", "application/json").send().await.expect("get");
    assert_eq!(r.status(), 404);
    assert_eq!(r.json::<serde_json::Value>().await.expect("json")["error"], "not_found");
    let r = c.get(e.at("/auth/admin/auth/nope")).send().await.expect("get");
    assert_eq!(r.json::<serde_json::Value>().await.expect("json")["error"], "not_found");
    let r = c.post(e.at("/auth/hello")).send().await.expect("post");
    assert_eq!(r.status(), 405);
    assert_eq!(r.headers()["allow"], "GET");
    let r = c.head(e.at("/auth/hello")).send().await.expect("head");
    assert_eq!(r.status(), 200);
    assert!(r.bytes().await.expect("bytes").is_empty());
    let r = c.get(e.at("/healthz")).header("x-request-id", "trace-abc.123").send().await.expect("get");
    assert_eq!(r.headers()["x-request-id"], "trace-abc.123");
    let r = c.get(e.at("/healthz")).header("x-request-id", "bad id with spaces").send().await.expect("get");
    assert_ne!(r.headers()["x-request-id"], "bad id with spaces");
    let logs = e.wait_log(&["trace-abc.123", "path=/auth/nope status=404"]).await;
    assert!(logs.contains("trace-abc.123"), "request id missing from the access log");
    assert!(logs.contains("path=/auth/nope status=404"), "{logs}");
}

/// SIGTERM: no new connections, the in-flight request finishes, exit code 0.
pub async fn graceful_shutdown(b: Backend) {
    let db = TestDb::new(b).await;
    let flows = write_dir(&db, "flows", &[("failing.lua", FAILING_FLOWS)]);
    let mut e = Setup::new(&db).flows(&format!("dir = \"{}\"", flows.display())).start().await;
    let slow = tokio::spawn({
        let url = e.at("/auth/t/busy");
        async move {
            let r = client().get(url).send().await?;
            Ok::<_, reqwest::Error>((r.status().as_u16(), r.text().await?))
        }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    e.signal("TERM");
    let (status, body) = slow.await.expect("join").expect("the in-flight request was cut off");
    assert_eq!((status, body.as_str()), (200, "done"));
    assert_eq!(e.wait_exit(Duration::from_secs(10)).await, Some(0));
    assert!(TcpStream::connect(e.url.trim_start_matches("http://")).is_err(), "still accepting after shutdown");
}

/// Slow or silent clients are disconnected.
pub async fn timeouts(b: Backend) {
    let db = TestDb::new(b).await;
    let flows = write_dir(
        &db,
        "flows",
        &[(
            "echo.lua",
            "local http = require('assay.http')\nhttp.route('POST', '/auth/echo', function(req) return http.text(req.body) end)\n",
        )],
    );
    let e = Setup::new(&db)
        .server("idle_timeout_secs = 1\nheader_read_timeout_secs = 1\nbody_read_timeout_secs = 1")
        .flows(&format!("dir = \"{}\"", flows.display()))
        .start()
        .await;
    let addr = e.url.trim_start_matches("http://").to_string();
    // Idle keep-alive connection: closed after about a second of silence.
    let mut s = TcpStream::connect(&addr).expect("connect");
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").expect("write");
    let mut buf = [0u8; 4096];
    let n = s.read(&mut buf).expect("read");
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    s.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    let started = Instant::now();
    let n = s.read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0, "connection not closed");
    assert!(started.elapsed() < Duration::from_secs(4), "{:?}", started.elapsed());
    // A body that stops arriving: 408, and the connection closes.
    let mut s = TcpStream::connect(&addr).expect("connect");
    s.write_all(b"POST /auth/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc").expect("write");
    s.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    let started = Instant::now();
    let n = s.read(&mut buf).expect("read");
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 408"), "{}", String::from_utf8_lossy(&buf[..n]));
    assert!(started.elapsed() < Duration::from_secs(4), "{:?}", started.elapsed());
    // Headers that never finish: closed.
    let mut s = TcpStream::connect(&addr).expect("connect");
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").expect("write");
    s.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    let started = Instant::now();
    let _ = s.read(&mut buf);
    assert!(started.elapsed() < Duration::from_secs(4), "{:?}", started.elapsed());
}

/// Every example in the stdlib reference runs: `lua` blocks as operator scripts, `lua flow`
/// blocks as flows of a running engine.
pub async fn stdlib_examples(b: Backend) {
    let db = TestDb::new(b).await;
    let docs = concat!(env!("CARGO_MANIFEST_DIR"), "/../stdlib");
    let mut files: Vec<_> = std::fs::read_dir(docs).expect("stdlib/").filter_map(|e| e.ok()).map(|e| e.path()).collect();
    files.retain(|p| p.extension().is_some_and(|x| x == "md"));
    files.sort();
    let mut scripts = 0;
    let mut flows: Vec<(String, String, String, Option<String>)> = Vec::new(); // file, source, request, expect
    for path in &files {
        let text = std::fs::read_to_string(path).expect("read");
        let name = path.file_stem().expect("stem").to_string_lossy().to_string();
        for (i, (info, code)) in fenced_blocks(&text).into_iter().enumerate() {
            match info.as_str() {
                "lua" if b == Backend::Sqlite => {
                    let file = db.dir.path().join(format!("{name}_{i}.lua"));
                    std::fs::write(&file, &code).expect("write");
                    let (rc, out, err) = run_cli(&["run", &file.display().to_string()], db.dir.path());
                    assert_eq!(rc, 0, "example {i} of {name}.md failed:\n{code}\n{out}{err}");
                    scripts += 1;
                }
                "lua flow" => {
                    let mut lines = code.lines();
                    let request = lines.next().and_then(|l| l.strip_prefix("-- ")).unwrap_or_default().to_string();
                    let expect = lines.next().and_then(|l| l.strip_prefix("-- expect: ")).map(str::to_string);
                    flows.push((format!("doc_{name}_{i}.lua"), code.clone(), request, expect));
                }
                _ => {}
            }
        }
    }
    assert!(files.len() >= 6, "stdlib reference missing: {files:?}");
    if b == Backend::Sqlite {
        assert!(scripts >= 6, "too few runnable examples: {scripts}");
    }
    assert!(!flows.is_empty(), "no flow examples in the stdlib reference");
    let entries: Vec<(&str, &str)> = flows.iter().map(|(f, s, _, _)| (f.as_str(), s.as_str())).collect();
    let dir = write_dir(&db, "docflows", &entries);
    let e = Setup::new(&db).flows(&format!("dir = \"{}\"", dir.display())).start().await;
    let c = client();
    for (file, _, request, expect) in &flows {
        let (method, path) = request.split_once(' ').unwrap_or_else(|| panic!("{file}: first line must be `-- METHOD /path`"));
        let r = c.request(method.parse().expect("method"), e.at(path)).send().await.expect("request");
        let status = r.status();
        let body = r.text().await.expect("text");
        assert_eq!(status, 200, "{file} ({request}): {body}\n{}", e.logs());
        if let Some(expect) = expect {
            assert!(body.contains(expect.as_str()), "{file}: {expect:?} not in {body:?}");
        }
    }
}

fn fenced_blocks(md: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut current: Option<(String, String)> = None;
    for line in md.lines() {
        match (&mut current, line.trim_start().strip_prefix("```")) {
            (None, Some(info)) => current = Some((info.trim().to_string(), String::new())),
            (Some(_), Some(_)) => out.extend(current.take()),
            (Some((_, code)), None) => {
                code.push_str(line);
                code.push('\n');
            }
            (None, None) => {}
        }
    }
    out
}

/// `assay-engine run`: the stdlib, `env`, `arg`, exit codes.
pub async fn run_scripts(b: Backend) {
    let db = TestDb::new(b).await;
    let script = db.dir.path().join("s.lua");
    std::fs::write(
        &script,
        r#"local json = require("assay.json")
local crypto = require("assay.crypto")
assert(env.get("ASSAY_TEST_VALUE") == "forty-two")
assert(arg[1] == "one" and arg[2] == "--two", "args")
assert(#crypto.random_token() == 43)
print(json.encode({ args = #arg }))
"#,
    )
    .expect("write");
    let out = std::process::Command::new(BIN)
        .args(["run", &script.display().to_string(), "one", "--two"])
        .env("ASSAY_TEST_VALUE", "forty-two")
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), r#"{"args":2}"#);
    std::fs::write(&script, "error('script failed on purpose')").expect("write");
    let (code, _, err) = run_cli(&["run", &script.display().to_string()], db.dir.path());
    assert_eq!(code, 1);
    assert!(err.contains("script failed on purpose"), "{err}");
}

/// A broken flow or two flows claiming one route stop start-up with a message naming them.
pub async fn bad_flows_stop_startup(b: Backend) {
    let db = TestDb::new(b).await;
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("broken.lua", "local x = = 1")], "flow broken.lua"),
        (
            &[
                ("a.lua", "local http = require('assay.http')\nhttp.route('GET', '/auth/same', function() end)"),
                ("b.lua", "local http = require('assay.http')\nhttp.route('GET', '/auth/same', function() end)"),
            ],
            "route GET /auth/same is registered by both a.lua and b.lua",
        ),
        (&[("h.lua", "local http = require('assay.http')\nhttp.route('GET', '/healthz', function() end)")], "served by the engine itself"),
        (&[("bad.lua", "local http = require('assay.http')\nhttp.route('BREW', '/auth/x', function() end)")], "unsupported method"),
        (&[("loop.lua", "while true do end")], "budget_exceeded"),
        (&[("claims.lua", "return { immich_role = 'admin' }")], "a hook flow must return a function (it returned table)"),
        // Flow libraries: loaded once at start-up, never allowed to declare routes.
        (&[("lib/broken.lua", "local x = = 1")], "flow lib/broken.lua"),
        (&[("lib/nothing.lua", "local x = 1")], "flow library lib.nothing must return a table (it returned nil)"),
        (
            &[("lib/routes.lua", "local http = require('assay.http')\nhttp.route('GET', '/auth/lib', function() end)\nreturn {}")],
            "http.route cannot be called in a flow library's top level",
        ),
        (&[("uses.lua", "local missing = require('lib.missing')")], "module 'lib.missing' not found: there is no flows/lib/missing.lua"),
        // A pane added beside the bundled console panes cannot take one of their routes.
        (
            &[("console/extra.lua", "local http = require('assay.http')\nhttp.route('GET', '/auth/console/users', function() end)")],
            "route GET /auth/console/users is registered by both",
        ),
    ];
    for (i, (files, expect)) in cases.iter().enumerate() {
        let dir = write_dir(&db, &format!("flows{i}"), files);
        let config = Setup::new(&db).flows(&format!("dir = \"{}\"\nbudget_ms = 300", dir.display())).write(&format!("c{i}.toml"));
        let (code, _, err) = run_cli(&["serve", "--config", &config.display().to_string()], db.dir.path());
        assert_eq!(code, 1, "{err}");
        assert!(err.contains(expect), "expected {expect:?} in {err}");
    }
}
