//! Boots the real `assay-engine` binary on an ephemeral port against a real backend: SQLite in
//! a temp dir, or PostgreSQL in a fresh database created from `ASSAY_TEST_PG_URL` and dropped
//! afterwards. Nothing here shares code with the engine beyond its binary.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tempfile::TempDir;

pub const BIN: &str = env!("CARGO_BIN_EXE_assay-engine");

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A private database for one test: a temp dir (SQLite) or a fresh PostgreSQL database.
pub struct TestDb {
    pub backend: Backend,
    pub dir: TempDir,
    pub pg_url: Option<String>,
    pg_name: Option<String>,
}

fn pg_admin_url() -> String {
    std::env::var("ASSAY_TEST_PG_URL")
        .unwrap_or_else(|_| panic!("ASSAY_TEST_PG_URL is not set: the PostgreSQL half needs a server (tests/run starts one)"))
}

fn replace_db(url: &str, db: &str) -> String {
    let mut u = url::Url::parse(url).expect("ASSAY_TEST_PG_URL is a URL");
    u.set_path(&format!("/{db}"));
    u.to_string()
}

impl TestDb {
    pub async fn new(backend: Backend) -> TestDb {
        let dir = tempfile::Builder::new().prefix("assay-test-").tempdir().expect("temp dir");
        match backend {
            Backend::Sqlite => TestDb { backend, dir, pg_url: None, pg_name: None },
            Backend::Postgres => {
                let admin = pg_admin_url();
                let name = format!("assay_t_{}", hex::encode(rand::random::<[u8; 6]>()));
                let pool = sqlx::PgPool::connect(&admin).await.expect("connect to ASSAY_TEST_PG_URL");
                sqlx::query(&format!("CREATE DATABASE {name}")).execute(&pool).await.expect("create database");
                pool.close().await;
                TestDb { backend, pg_url: Some(replace_db(&admin, &name)), pg_name: Some(name), dir }
            }
        }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The `[backend]` section for this database.
    pub fn backend_toml(&self) -> String {
        let data = self.data_dir().display().to_string();
        match self.backend {
            Backend::Sqlite => format!("[backend]\ntype = \"sqlite\"\ndata_dir = \"{data}\"\n"),
            Backend::Postgres => {
                format!("[backend]\ntype = \"postgres\"\nurl = \"{}\"\ndata_dir = \"{data}\"\n", self.pg_url.as_deref().unwrap_or_default())
            }
        }
    }

    /// Runs one SQL statement against the engine's database from outside the engine.
    pub async fn exec(&self, sql: &str) {
        match self.backend {
            Backend::Postgres => {
                let pool = sqlx::PgPool::connect(self.pg_url.as_deref().unwrap_or_default()).await.expect("connect");
                sqlx::query(sql).execute(&pool).await.expect("statement");
                pool.close().await;
            }
            Backend::Sqlite => {
                let pool = self.sqlite_pool().await;
                sqlx::query(sql).execute(&pool).await.expect("statement");
                pool.close().await;
            }
        }
    }

    /// Runs a statement that may fail (e.g. one the schema must refuse).
    pub async fn try_exec(&self, sql: &str) -> Result<(), sqlx::Error> {
        match self.backend {
            Backend::Postgres => {
                let pool = sqlx::PgPool::connect(self.pg_url.as_deref().unwrap_or_default()).await.expect("connect");
                let r = sqlx::query(sql).execute(&pool).await.map(|_| ());
                pool.close().await;
                r
            }
            Backend::Sqlite => {
                let pool = self.sqlite_pool().await;
                let r = sqlx::query(sql).execute(&pool).await.map(|_| ());
                pool.close().await;
                r
            }
        }
    }

    /// Counts rows of `SELECT COUNT(*) ...` from outside the engine.
    pub async fn count(&self, sql: &str) -> i64 {
        match self.backend {
            Backend::Postgres => {
                let pool = sqlx::PgPool::connect(self.pg_url.as_deref().unwrap_or_default()).await.expect("connect");
                let n: i64 = sqlx::query_scalar(sql).fetch_one(&pool).await.expect("count");
                pool.close().await;
                n
            }
            Backend::Sqlite => {
                let pool = self.sqlite_pool().await;
                let n: i64 = sqlx::query_scalar(sql).fetch_one(&pool).await.expect("count");
                pool.close().await;
                n
            }
        }
    }

    pub async fn sqlite_pool(&self) -> sqlx::SqlitePool {
        let data = self.data_dir();
        let attach = format!(
            "ATTACH DATABASE '{}' AS engine; ATTACH DATABASE '{}' AS auth;",
            data.join("engine.db").display(),
            data.join("auth.db").display()
        );
        sqlx::sqlite::SqlitePoolOptions::new()
            .max_connections(1)
            .after_connect(move |conn, _| {
                let attach = attach.clone();
                Box::pin(async move {
                    sqlx::Executor::execute(&mut *conn, attach.as_str()).await?;
                    Ok(())
                })
            })
            .connect_with(sqlx::sqlite::SqliteConnectOptions::new().filename(""))
            .await
            .expect("open sqlite")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let (Some(name), Ok(admin)) = (self.pg_name.take(), std::env::var("ASSAY_TEST_PG_URL")) else { return };
        // Drop runs inside the test's runtime: use a thread with its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            rt.block_on(async {
                if let Ok(pool) = sqlx::PgPool::connect(&admin).await {
                    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&pool).await;
                    pool.close().await;
                }
            });
        })
        .join();
    }
}

/// Builds an engine.toml for a test.
pub struct Setup<'a> {
    pub db: &'a TestDb,
    pub server: String,
    pub flows: String,
    pub extra: String,
    pub top: String,
    /// A fixed port picked by [`Setup::public_port`], announced as `public_url` too.
    pub port: Option<u16>,
}

impl<'a> Setup<'a> {
    pub fn new(db: &'a TestDb) -> Setup<'a> {
        Setup { db, server: String::new(), flows: String::new(), extra: String::new(), top: String::new(), port: None }
    }
    /// Listens on a free port picked now (not port 0) and announces it as `public_url`, so
    /// the issuer (`{public_url}/auth`) is the address clients actually reach. The port is
    /// free when picked; the engine binds it a moment later.
    pub fn public_port(mut self) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
        self.port = Some(listener.local_addr().expect("local addr").port());
        drop(listener);
        self
    }
    pub fn server(mut self, lines: &str) -> Self {
        self.server.push_str(lines);
        self.server.push('\n');
        self
    }
    pub fn flows(mut self, lines: &str) -> Self {
        self.flows.push_str(lines);
        self.flows.push('\n');
        self
    }
    pub fn extra(mut self, toml: &str) -> Self {
        self.extra.push_str(toml);
        self.extra.push('\n');
        self
    }
    pub fn top(mut self, lines: &str) -> Self {
        self.top.push_str(lines);
        self.top.push('\n');
        self
    }

    pub fn toml(&self) -> String {
        let mut s = self.top.clone();
        match self.port {
            Some(port) => s.push_str(&format!("[server]\nbind_addr = \"127.0.0.1:{port}\"\npublic_url = \"http://127.0.0.1:{port}\"\n")),
            None => s.push_str("[server]\nbind_addr = \"127.0.0.1:0\"\n"),
        }
        s.push_str(&self.server);
        s.push_str(&self.db.backend_toml());
        if !self.flows.is_empty() {
            s.push_str("[flows]\n");
            s.push_str(&self.flows);
        }
        s.push_str(&self.extra);
        s
    }

    /// Writes the config next to the database and returns its path.
    pub fn write(&self, name: &str) -> PathBuf {
        let path = self.db.dir.path().join(name);
        std::fs::write(&path, self.toml()).expect("write config");
        path
    }

    pub async fn start(&self) -> Engine {
        let path = self.write("engine.toml");
        Engine::start_with(&path, self.db.dir.path()).await
    }
}

/// A running engine process.
pub struct Engine {
    child: Option<Child>,
    pub url: String,
    pub config: PathBuf,
    stderr: Arc<Mutex<String>>,
    pub stdout: Arc<Mutex<String>>,
}

impl Engine {
    /// Starts `assay-engine serve --config PATH` in `cwd` and waits for it to listen.
    pub async fn start_with(config: &Path, cwd: &Path) -> Engine {
        Self::spawn(&["serve", "--config", &config.display().to_string()], cwd, config).await
    }

    pub async fn spawn(args: &[&str], cwd: &Path, config: &Path) -> Engine {
        let mut child = Command::new(BIN)
            .args(args)
            .current_dir(cwd)
            .env_remove("ASSAY_CONFIG")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn assay-engine");
        let stderr = Arc::new(Mutex::new(String::new()));
        let stdout = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        let out = child.stdout.take().expect("stdout");
        let out_buf = stdout.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if let Some(addr) = line.split("listening on ").nth(1) {
                    let _ = tx.send(addr.trim().to_string());
                }
                out_buf.lock().expect("lock").push_str(&(line + "\n"));
            }
        });
        let err = child.stderr.take().expect("stderr");
        let err_buf = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                err_buf.lock().expect("lock").push_str(&(line + "\n"));
            }
        });
        let started = Instant::now();
        let url = loop {
            if let Ok(url) = rx.try_recv() {
                break url;
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("engine exited ({status}) before listening:\n{}", stderr.lock().expect("lock"));
            }
            if started.elapsed() > Duration::from_secs(60) {
                let _ = child.kill();
                panic!("engine did not listen within 60 s:\n{}", stderr.lock().expect("lock"));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        // The start-up announcement ends with the admin key line; let the reader catch up.
        let announced = Instant::now();
        while !stdout.lock().expect("lock").contains("admin API key:") && announced.elapsed() < Duration::from_secs(5) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Engine { child: Some(child), url, config: config.to_path_buf(), stderr, stdout }
    }

    pub fn at(&self, path: &str) -> String {
        format!("{}{}", self.url, path)
    }

    pub fn logs(&self) -> String {
        self.stderr.lock().expect("lock").clone()
    }

    /// The log once it contains every one of `needles` (the engine writes before it answers,
    /// but the pipe reader may lag behind), or as it is after 5 s.
    pub async fn wait_log(&self, needles: &[&str]) -> String {
        let started = Instant::now();
        loop {
            let logs = self.logs();
            if needles.iter().all(|n| logs.contains(n)) || started.elapsed() > Duration::from_secs(5) {
                return logs;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    pub fn signal(&self, sig: &str) {
        let status = Command::new("kill").args([&format!("-{sig}"), &self.pid().to_string()]).status().expect("kill");
        assert!(status.success());
    }

    /// Waits for the process to exit; returns its exit code.
    pub async fn wait_exit(&mut self, within: Duration) -> Option<i32> {
        let started = Instant::now();
        let child = self.child.as_mut()?;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return status.code();
            }
            if started.elapsed() > within {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Runs the binary to completion: (exit code, stdout, stderr).
pub fn run_cli(args: &[&str], cwd: &Path) -> (i32, String, String) {
    let out =
        Command::new(BIN).args(args).current_dir(cwd).env_remove("ASSAY_CONFIG").stdin(Stdio::null()).output().expect("run assay-engine");
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// Runs the binary to completion with `input` on its standard input: (exit code, stdout, stderr).
pub fn run_cli_stdin(args: &[&str], cwd: &Path, input: &str) -> (i32, String, String) {
    use std::io::Write;
    let mut child = Command::new(BIN)
        .args(args)
        .current_dir(cwd)
        .env_remove("ASSAY_CONFIG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run assay-engine");
    // Dropping stdin after the write closes it, so a reader that wants more sees end of file.
    child.stdin.take().expect("stdin").write_all(input.as_bytes()).expect("write stdin");
    let out = child.wait_with_output().expect("wait for assay-engine");
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .expect("client")
}

/// Writes `files` (relative name, contents) under a new folder of the test dir.
pub fn write_dir(db: &TestDb, folder: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = db.dir.path().join(folder);
    for (name, text) in files {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, text).expect("write");
    }
    dir
}

/// Polls `f` until it returns true or `within` passes.
pub async fn eventually<F, Fut>(within: Duration, mut f: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    loop {
        if f().await {
            return true;
        }
        if started.elapsed() > within {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Polls `GET url` until it answers `status` or `within` passes.
pub async fn status_becomes(url: &str, status: u16, within: Duration) -> bool {
    let c = client();
    eventually(within, || {
        let (c, url) = (c.clone(), url.to_string());
        async move { c.get(url).send().await.map(|r| r.status().as_u16() == status).unwrap_or(false) }
    })
    .await
}

/// Runs `node SCRIPT` in `dir` with `env`, stopped after `timeout`; panics unless it exits 0,
/// with its output, `note` (where screenshots went, say) and the engine's log. Returns stdout.
pub async fn run_node_script(dir: &Path, script: &str, env: &[(&str, String)], timeout: Duration, note: &str, engine: &Engine) -> String {
    let mut node = tokio::process::Command::new("node");
    node.arg(script).current_dir(dir).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
    for (k, v) in env {
        node.env(k, v);
    }
    let child = node.spawn().unwrap_or_else(|err| panic!("cannot run `node` (is Node.js installed?): {err}"));
    let out = match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Ok(out) => out.expect("wait for node"),
        Err(_) => {
            panic!("node tests/node/{script} did not finish within {timeout:?} (killed){note}\n--- engine log ---\n{}", engine.logs())
        }
    };
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "node tests/node/{script} failed ({}){note}\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}\n--- engine log ---\n{}",
        out.status,
        engine.logs()
    );
    stdout
}
