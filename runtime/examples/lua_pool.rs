//! Lua state micro-benchmark: what each step of serving a request with a flow costs, to justify
//! "pool states, compile each flow once per state, run its top level in a fresh environment
//! per request" (see `runtime/src/lua/mod.rs` and BENCHMARKS.md).
//!
//!     CARGO_TARGET_DIR=$HOME/.cache/assay-target cargo run --release --example lua_pool
//!
//! Optional: `LUA_POOL_SCALE=0.2` (or 5) scales every iteration count; `LUA_POOL_ROUNDS=7`
//! sets how many timed rounds each operation gets (the table shows the median and the best
//! round; on a noisy machine trust ratios within one run more than absolute figures).
//!
//! Steps are timed one by one on `assay::lua::sandbox::Vm` (the engine's private pool code is
//! re-enacted with the same public calls), then end to end with `LuaHost::run_route`, the
//! function the HTTP handler calls (pool check-out/in, budget, async calls). Rows marked
//! "(reference)" are plain mlua, for scale. Only public APIs and mlua are used.

use std::error::Error;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use assay::config::Config;
use assay::lua::sandbox::Vm;
use assay::lua::{HttpRequest, LuaHost, Phase, RouteCollector, RouteMatch, Shared};
use assay::templates::Templates;
use mlua::{Function, Lua, LuaOptions, StdLib, Value};

/// The flow the engine benchmark serves (`bench/flows/bench.lua`), inlined.
const FLOW: &str = r#"
local http = require("assay.http")
http.route("GET", "/bench/lua", function(req)
  return http.json({ status = "ok" })
end)
"#;

/// A handler that does nothing at all: the floor of a Rust -> Lua call.
const EMPTY_FLOW: &str = r#"
local http = require("assay.http")
http.route("GET", "/bench/empty", function(req) end)
"#;

type Res<T> = Result<T, Box<dyn Error>>;

struct Row {
    name: &'static str,
    iters: u64,
    /// Nanoseconds per operation, one entry per round.
    rounds: Vec<f64>,
}

impl Row {
    fn median(&self) -> f64 {
        let mut v = self.rounds.clone();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    }
    fn best(&self) -> f64 {
        self.rounds.iter().copied().fold(f64::INFINITY, f64::min)
    }
}

struct Bench {
    scale: f64,
    rounds: usize,
    rows: Vec<Row>,
}

impl Bench {
    /// Times `op` over `iters` iterations (scaled), `rounds` times, after one warm-up round.
    /// `op` gets the number of iterations to run and returns the nanoseconds they took
    /// (so that set-up and tear-down can stay outside the timed region).
    fn run(&mut self, name: &'static str, iters: u64, mut op: impl FnMut(u64) -> Res<f64>) -> Res<()> {
        let iters = ((iters as f64 * self.scale).round() as u64).max(1);
        op((iters / 10).max(1))?; // warm-up
        let mut rounds = Vec::with_capacity(self.rounds);
        for _ in 0..self.rounds {
            rounds.push(op(iters)? / iters as f64);
        }
        let row = Row { name, iters, rounds };
        eprintln!("  {:<58} {:>12}", row.name, fmt_ns(row.median()));
        self.rows.push(row);
        Ok(())
    }
}

fn fmt_ns(ns: f64) -> String {
    if ns >= 1_000_000.0 {
        format!("{:.2} ms", ns / 1_000_000.0)
    } else if ns >= 1_000.0 {
        format!("{:.2} µs", ns / 1_000.0)
    } else {
        format!("{ns:.0} ns")
    }
}

fn timed(f: impl FnOnce() -> Res<()>) -> Res<f64> {
    let start = Instant::now();
    f()?;
    Ok(start.elapsed().as_nanos() as f64)
}

/// Runs a compiled flow chunk's top level in a fresh environment (what the engine does per
/// request) and returns the handlers it registered.
fn run_top_level(vm: &Vm, chunk: &Function) -> Res<Vec<(String, String, Function)>> {
    let env = vm.fresh_env()?;
    vm.set_phase(Phase::Load);
    vm.lua.set_app_data(RouteCollector::default());
    let ran = chunk.call::<()>(env);
    let collected = vm.lua.remove_app_data::<RouteCollector>().map(|c| c.0).unwrap_or_default();
    ran?;
    Ok(collected)
}

/// A request table as the engine's runner builds it (`method`, `path`, lazy fields via the
/// metatable), here from Rust.
fn request_table(lua: &Lua, req: &HttpRequest) -> Res<mlua::Table> {
    let t = lua.create_table()?;
    t.raw_set("method", req.method.as_str())?;
    t.raw_set("path", req.path.as_str())?;
    t.set_metatable(Some(assay::stdlib::http::request_metatable(lua)?));
    Ok(t)
}

/// The request-phase part: request table in, handler call, response out.
fn call_handler(vm: &Vm, handler: &Function, req: &HttpRequest) -> Res<()> {
    vm.set_phase(Phase::Request);
    let req_table = request_table(&vm.lua, req)?;
    let ret: Value = handler.call(req_table)?;
    black_box(assay::stdlib::http::response_from(&vm.lua, ret)?);
    Ok(())
}

fn first_handler(handlers: Vec<(String, String, Function)>) -> Res<Function> {
    handlers.into_iter().next().map(|h| h.2).ok_or_else(|| "the flow registered no route".into())
}

fn sample_request() -> HttpRequest {
    HttpRequest {
        method: "GET".into(),
        path: "/bench/lua".into(),
        headers: [("host", "127.0.0.1"), ("user-agent", "bench")]
            .into_iter()
            .map(|(k, v)| (http::HeaderName::from_static(k), http::HeaderValue::from_static(v)))
            .collect(),
        ip: "127.0.0.1".into(),
        request_id: "0123456789abcdef01234567".into(),
        ..HttpRequest::default()
    }
}

fn main() -> Res<()> {
    let scale: f64 = std::env::var("LUA_POOL_SCALE").ok().and_then(|s| s.parse().ok()).unwrap_or(1.0);
    let rounds: usize = std::env::var("LUA_POOL_ROUNDS").ok().and_then(|s| s.parse().ok()).unwrap_or(5).max(1);
    let config = Config::defaults();
    let memory_limit = (config.flows.memory_limit_mb as usize).saturating_mul(1024 * 1024);
    let shared = Arc::new(Shared {
        bindings: assay::stdlib::BINDINGS,
        config: Arc::new(config),
        templates: Templates::new(None),
        db: None,
        client: assay::server::http_client()?,
        identity: None,
    });
    let req = sample_request();
    let mut b = Bench { scale, rounds, rows: Vec::new() };
    eprintln!("lua_pool: {rounds} rounds per operation, scale {scale} (median per op as it goes)");

    // 1. A new state: Lua + sandbox + stdlib `require` (modules are built lazily on first require).
    b.run("Vm::new (state + sandbox), drop excluded", 2_000, |n| {
        let mut total = 0.0;
        let mut left = n;
        while left > 0 {
            let batch = left.min(100);
            let mut vms = Vec::with_capacity(batch as usize);
            total += timed(|| {
                for _ in 0..batch {
                    vms.push(Vm::new(shared.clone(), memory_limit)?);
                }
                Ok(())
            })?;
            drop(black_box(vms));
            left -= batch;
        }
        Ok(total)
    })?;
    b.run("(reference) bare mlua Lua::new_with, same libs", 2_000, |n| {
        let libs = StdLib::STRING | StdLib::TABLE | StdLib::MATH | StdLib::UTF8 | StdLib::OS;
        let mut total = 0.0;
        let mut left = n;
        while left > 0 {
            let batch = left.min(100);
            let mut states = Vec::with_capacity(batch as usize);
            total += timed(|| {
                for _ in 0..batch {
                    states.push(Lua::new_with(libs, LuaOptions::new())?);
                }
                Ok(())
            })?;
            drop(black_box(states));
            left -= batch;
        }
        Ok(total)
    })?;
    b.run("Vm::new + drop", 2_000, |n| {
        timed(|| {
            for _ in 0..n {
                black_box(Vm::new(shared.clone(), memory_limit)?);
            }
            Ok(())
        })
    })?;
    // The first top-level run in a state also builds the assay.http module for that state.
    b.run("first top-level run in a new state (builds assay.http)", 2_000, |n| {
        let mut total = 0.0;
        let mut left = n;
        while left > 0 {
            let batch = left.min(100);
            let mut ready = Vec::with_capacity(batch as usize);
            for _ in 0..batch {
                let mut vm = Vm::new(shared.clone(), memory_limit)?;
                let chunk = vm.chunk(0, "bench.lua", FLOW)?;
                ready.push((vm, chunk));
            }
            total += timed(|| {
                for (vm, chunk) in &ready {
                    black_box(run_top_level(vm, chunk)?);
                }
                Ok(())
            })?;
            drop(ready);
            left -= batch;
        }
        Ok(total)
    })?;
    // What a brand-new state costs before it serves its first request: state, compile, first
    // top-level run (which builds assay.http for this state), handler.
    b.run("new state, first request (Vm::new+compile+run+handler)", 2_000, |n| {
        timed(|| {
            for _ in 0..n {
                let mut vm = Vm::new(shared.clone(), memory_limit)?;
                let chunk = vm.chunk(0, "bench.lua", FLOW)?;
                let handler = first_handler(run_top_level(&vm, &chunk)?)?;
                call_handler(&vm, &handler, &req)?;
                black_box(vm);
            }
            Ok(())
        })
    })?;

    // 2. Compiling the flow.
    let vm_compile = Vm::new(shared.clone(), memory_limit)?;
    b.run("compile flow chunk (lua.load(src).into_function())", 20_000, |n| {
        timed(|| {
            for _ in 0..n {
                black_box(vm_compile.lua.load(FLOW).set_name("@flows/bench.lua").into_function()?);
            }
            Ok(())
        })
    })?;
    drop(vm_compile);

    // A pooled state: the flow compiled once, assay.http already built.
    let mut vm = Vm::new(shared.clone(), memory_limit)?;
    let chunk = vm.chunk(0, "bench.lua", FLOW)?;
    let handler = first_handler(run_top_level(&vm, &chunk)?)?;
    let empty_chunk = vm.chunk(1, "empty.lua", EMPTY_FLOW)?;
    let empty_handler = first_handler(run_top_level(&vm, &empty_chunk)?)?;

    // 3. A fresh environment table.
    b.run("fresh_env() (table + metatable)", 200_000, |n| {
        timed(|| {
            for _ in 0..n {
                black_box(vm.fresh_env()?);
            }
            Ok(())
        })
    })?;
    b.run("vm.chunk() cache hit (compiled once per state)", 200_000, |n| {
        timed(|| {
            for _ in 0..n {
                black_box(vm.chunk(0, "bench.lua", FLOW)?);
            }
            Ok(())
        })
    })?;

    // 4. Re-running the compiled top level in a fresh environment.
    b.run("re-run top level in fresh env (env+set_env+call)", 100_000, |n| {
        timed(|| {
            for _ in 0..n {
                black_box(run_top_level(&vm, &chunk)?);
            }
            Ok(())
        })
    })?;

    // 5. Calling handlers.
    b.run("call empty handler (function(req) end, no args)", 500_000, |n| {
        vm.set_phase(Phase::Request);
        timed(|| {
            for _ in 0..n {
                black_box(empty_handler.call::<Value>(())?);
            }
            Ok(())
        })
    })?;
    b.run("call bench handler (returns http.json{...})", 200_000, |n| {
        vm.set_phase(Phase::Request);
        timed(|| {
            for _ in 0..n {
                black_box(handler.call::<Value>(Value::Nil)?);
            }
            Ok(())
        })
    })?;
    b.run("request table built from Rust (incl. its metatable)", 100_000, |n| {
        timed(|| {
            for _ in 0..n {
                black_box(request_table(&vm.lua, &req)?);
            }
            Ok(())
        })
    })?;
    let bare_lua = Lua::new();
    b.run("(reference) request_table() in a bare mlua state", 100_000, |n| {
        timed(|| {
            for _ in 0..n {
                black_box(request_table(&bare_lua, &req)?);
            }
            Ok(())
        })
    })?;
    drop(bare_lua);
    let limited_lua = Lua::new();
    limited_lua.set_memory_limit(memory_limit)?;
    b.run("(reference) same, bare state with set_memory_limit", 100_000, |n| {
        timed(|| {
            for _ in 0..n {
                black_box(request_table(&limited_lua, &req)?);
            }
            Ok(())
        })
    })?;
    drop(limited_lua);
    b.run("request table + bench handler + response_from", 100_000, |n| {
        timed(|| {
            for _ in 0..n {
                call_handler(&vm, &handler, &req)?;
            }
            Ok(())
        })
    })?;

    // 6. The whole pooled request path (minus the pool lock, budget and async machinery).
    b.run("pooled request: re-run top level + handler (sync)", 100_000, |n| {
        timed(|| {
            for _ in 0..n {
                let h = first_handler(run_top_level(&vm, &chunk)?)?;
                call_handler(&vm, &h, &req)?;
            }
            Ok(())
        })
    })?;

    // 7. The engine's own path (one async call running the top level and the handler in one
    //    thread, under the budget) is measured end to end with LuaHost::run_route below.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    b.run("call empty handler, async (call_async)", 200_000, |n| {
        vm.set_phase(Phase::Request);
        rt.block_on(async {
            let start = Instant::now();
            for _ in 0..n {
                black_box(empty_handler.call_async::<Value>(()).await?);
            }
            Ok(start.elapsed().as_nanos() as f64)
        })
    })?;

    // 8. The real thing: LuaHost::run_route, i.e. the pool check-out/check-in, the budget and
    //    everything above, on a host loaded like the engine's (bundled flows + bench.lua).
    let flows_dir = tempfile::tempdir()?;
    std::fs::write(flows_dir.path().join("bench.lua"), FLOW)?;
    let host_config = Config::from_toml_str(&format!("[flows]\ndir = {:?}\n", flows_dir.path().display().to_string()), None)?;
    let host_shared = Arc::new(Shared {
        bindings: assay::stdlib::BINDINGS,
        config: Arc::new(host_config),
        templates: Templates::new(None),
        db: None,
        client: assay::server::http_client()?,
        identity: None,
    });
    let host = rt.block_on(LuaHost::new(host_shared))?;
    let mut hello_req = sample_request();
    hello_req.path = "/auth/hello".into();
    hello_req.query = Some("name=bench".into());
    // A Lua handler of flows/oidc.lua, the file that registers the token endpoint among 15
    // routes: what a flow's top level costs a request depends on how much it registers.
    let mut preflight_req = sample_request();
    preflight_req.method = "OPTIONS".into();
    preflight_req.path = "/auth/token".into();
    for (label, r) in [
        ("LuaHost::run_route GET /bench/lua (whole engine path)", &req),
        ("LuaHost::run_route GET /auth/hello (template render)", &hello_req),
        ("LuaHost::run_route OPTIONS /auth/token (oidc.lua)", &preflight_req),
    ] {
        let RouteMatch::Found(entry, _) = host.routes().find(&r.method, &r.path) else {
            return Err(format!("{} is not routed", r.path).into());
        };
        b.run(label, 100_000, |n| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..n {
                    black_box(host.run_route(entry, r.clone()).await?);
                }
                Ok(start.elapsed().as_nanos() as f64)
            })
        })?;
    }
    drop(host);
    drop(flows_dir);

    // Memory of one state, as Lua's allocator counts it.
    let fresh = Vm::new(shared.clone(), memory_limit)?;
    let bare = fresh.lua.used_memory();
    let mut loaded = Vm::new(shared.clone(), memory_limit)?;
    let c = loaded.chunk(0, "bench.lua", FLOW)?;
    run_top_level(&loaded, &c)?;
    loaded.lua.gc_collect()?;
    loaded.lua.gc_collect()?;
    let with_flow = loaded.lua.used_memory();

    // Report.
    let mut out = String::new();
    out.push_str(&format!("\nLua state micro-benchmark ({} timed rounds per operation, after a warm-up round)\n\n", b.rounds));
    out.push_str(&format!("| {:<58} | {:>9} | {:>12} | {:>12} |\n", "operation", "iters", "median/op", "best/op"));
    out.push_str(&format!("|{:-<60}|{:->11}|{:->14}|{:->14}|\n", "", ":", ":", ":"));
    for r in &b.rows {
        out.push_str(&format!("| {:<58} | {:>9} | {:>12} | {:>12} |\n", r.name, r.iters, fmt_ns(r.median()), fmt_ns(r.best())));
    }
    let get = |prefix: &str| b.rows.iter().find(|r| r.name.starts_with(prefix)).map(Row::median).unwrap_or(f64::NAN);
    let new_vm = get("Vm::new (state");
    let first = get("new state, first request");
    let pooled = get("LuaHost::run_route GET /bench/lua");
    let rerun = get("re-run top level");
    out.push_str(&format!(
        "\nmemory of one state (lua.used_memory): {:.1} KiB bare, {:.1} KiB with the flow compiled and assay.http built\n",
        bare as f64 / 1024.0,
        with_flow as f64 / 1024.0
    ));
    out.push_str(&format!(
        "ratios (medians): Vm::new / pooled run_route = {:.1}x; new-state first request / pooled run_route = {:.1}x; \
         Vm::new / top-level re-run = {:.1}x\n",
        new_vm / pooled,
        first / pooled,
        new_vm / rerun
    ));
    print!("{out}");
    Ok(())
}
