//! One Lua state (a [`Vm`]) and the sandbox every chunk in it runs under.
//!
//! The sandbox is an allow-list (Redis's `script_lua.c` idea): a chunk never sees the real
//! globals, only a fresh environment table per run of its top level (once per state, or per
//! request for a flow whose handlers are not kept: see [`SCAN`]) whose misses fall through to a
//! shared, read-only table of allowed names. Reading or writing an undeclared global raises. Standard
//! library tables are read-only proxies, the string metatable is hidden, and `pcall`/`xpcall`
//! are wrapped so that a flow cannot swallow the error that stops it when its budget is spent.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use mlua::{FromLuaMulti, Function, HookTriggers, IntoLuaMulti, Lua, LuaOptions, StdLib, Table, Value, VmState};

use super::{Phase, RequestRun, Shared};

/// Base functions a chunk may call. Deliberately absent: `load`, `loadstring`, `dofile`,
/// `loadfile`, `rawset`, `collectgarbage`, `setfenv`-likes, `require` (replaced by ours),
/// and the `io`, `debug`, `package` and `coroutine` libraries.
const ALLOWED_BASE: &[&str] = &[
    "assert",
    "error",
    "ipairs",
    "next",
    "pairs",
    "rawequal",
    "rawget",
    "rawlen",
    "select",
    "setmetatable",
    "getmetatable",
    "tonumber",
    "tostring",
    "type",
    "_VERSION",
];
/// Libraries exposed as read-only proxies, with the functions each may use (`None` = all).
const ALLOWED_LIBS: &[(&str, Option<&[&str]>)] =
    &[("string", None), ("table", None), ("math", None), ("utf8", None), ("os", Some(&["time", "clock", "date", "difftime"]))];

pub use super::budget::{check_budget, Budget, BUDGET_EXCEEDED};

/// How long a flow may compute before it yields its worker thread to other tasks.
const YIELD_EVERY: std::time::Duration = std::time::Duration::from_millis(2);

/// Runs before any chunk: hides the string metatable and builds the wrapped `pcall`/`xpcall`.
const PRELUDE: &str = r#"
local budget_exceeded, raw_pcall, raw_xpcall, select, error, is_failure, tostring, raw_assert = ...
getmetatable("").__metatable = false
local function rethrow(ok, ...)
  if not ok and budget_exceeded() then error((...), 0) end
  return ok, ...
end
local function pcall(f, ...) return rethrow(raw_pcall(f, ...)) end
local function xpcall(f, handler, ...) return rethrow(raw_xpcall(f, handler, ...)) end
-- An error of `nil, err` raised as it is (`error(err)`, `assert(x, err)`) is raised as its
-- text, "code: message": the host's log shows a table's address otherwise. Anything else is
-- raised unchanged. Not tail calls, so `level` counts from the caller as Lua's own does.
local function raise(e, level)
  if is_failure(e) then e = tostring(e) end
  if level == 0 then error(e, 0) end
  error(e, (level or 1) + 1)
end
local function assert(v, m, ...)
  if v then return v, m, ... end
  if m == nil then raw_assert(v) end
  if is_failure(m) then m = tostring(m) end
  error(m, 0)
end
return pcall, xpcall, raise, assert
"#;

/// Serves one request in one Lua thread: the flow's top level in a fresh environment (phase
/// load, registering routes), then the wanted handler (phase request) with a new request
/// table. Both tables are made here, in Lua, which is cheaper than building them from Rust.
const RUNNER: &str = r#"
local arm_budget, take_handler, env_mt, request_mt, setmetatable = ...
return function(chunk, method, path)
  arm_budget()
  chunk(setmetatable({}, env_mt))
  local handler = take_handler()
  return handler(setmetatable({ method = method, path = path }, request_mt))
end
"#;

/// Serves one request with a handler the state keeps (see [`Vm::cache_handlers`]): a new
/// request table, the handler, then a check that no upvalue the handlers reach was assigned.
/// `false` as the second result means one was: the caller throws the handlers away, so the
/// next request of this state gets fresh ones and cannot see what this one stored.
const CACHED_RUNNER: &str = r#"
local arm_budget, request_mt, setmetatable, getupvalue, rawequal = ...
return function(handlers, ordinal, method, path)
  arm_budget()
  local ret = handlers[ordinal](setmetatable({ method = method, path = path }, request_mt))
  local snap = handlers.snap
  for k = 1, handlers.n, 3 do
    local _, v = getupvalue(snap[k], snap[k + 1])
    if not rawequal(v, snap[k + 2]) then return ret, false end
  end
  return ret, true
end
"#;

/// Decides whether a flow's handlers, made once by its top level, may serve every request of
/// the state: yes when everything they reach through upvalues (transitively through Lua
/// functions) is a value that cannot be changed in place (nil, boolean, number, string, a Rust
/// function, a table known to be read-only). Then the only way a request could leave
/// something for the next is assigning an upvalue, which [`CACHED_RUNNER`] detects by
/// comparing every reached upvalue with its value here. Returns the handlers with that
/// snapshot, or nil (any other table, userdata: the flow re-runs its top level per request).
/// A Rust function's upvalues are named "" by `debug.getupvalue`: its state is the engine's.
/// So is that of an async Rust function, which mlua wraps in a Lua chunk named
/// `__mlua_async_poll` (its `_ENV` upvalue is a private table of mlua's), loaded from mlua's
/// chunk cache stripped after the first time (source `?`); a flow cannot make a function
/// with either source, as it cannot load code (flows are `@flows/...`, the stdlib's own Lua
/// `@stdlib/...`, the engine's chunks `=runner` and the like).
const SCAN: &str = r#"
local getupvalue, getinfo, type, frozen = ...
local async_poll = { ["__mlua_async_poll"] = true, ["=__mlua_async_poll"] = true, ["=?"] = true, ["?"] = true }
local function scan(f, seen, snap)
  if seen[f] then return true end
  seen[f] = true
  local info = getinfo(f, "S")
  if info.what == "main" and async_poll[info.source] then return true end
  local i = 1
  while true do
    local name, v = getupvalue(f, i)
    if name == nil or name == "" then return true end
    local t = type(v)
    if t == "function" then
      if not scan(v, seen, snap) then return false end
    elseif t == "table" then
      if not frozen[v] then return false end
    elseif t ~= "nil" and t ~= "boolean" and t ~= "number" and t ~= "string" then
      return false
    end
    local n = snap.n
    snap[n + 1], snap[n + 2], snap[n + 3] = f, i, v
    snap.n = n + 3
    i = i + 1
  end
end
return function(handlers)
  local seen, snap = {}, { n = 0 }
  for k = 1, #handlers do
    if not scan(handlers[k], seen, snap) then return nil end
  end
  handlers.snap, handlers.n = snap, snap.n
  return handlers
end
"#;

/// Where the weak-keyed set of read-only tables (stdlib proxies, load environments) lives.
const FROZEN_KEY: &str = "assay.frozen";

/// Runs any function under the budget (see [`Vm::call`]).
const BUDGETED: &str = r#"
local arm_budget = ...
return function(f, ...)
  arm_budget()
  return f(...)
end
"#;

/// Prepended to every flow, on its first line so that line numbers stay true: the chunk takes
/// its global environment as its argument. (Cheaper than mlua's `set_environment`, which
/// compiles a helper chunk on every call.)
/// Runs a hook flow (one whose top level returns a function, such as `flows/claims.lua`) from
/// inside a stdlib call: the budget hook is armed on the coroutine mlua runs it in, the chunk
/// gets a fresh environment like any flow, and the function it returns is called with `ctx`.
const HOOK_RUNNER: &str = r#"
local arm_budget, env_mt, setmetatable, type, error = ...
return function(chunk, name, ctx)
  arm_budget()
  local f = chunk(setmetatable({}, env_mt))
  if type(f) ~= "function" then
    error("flows/" .. name .. " must return a function (it returned " .. type(f) .. ")", 0)
  end
  return f(ctx)
end
"#;

/// Where `Vm::new` leaves the environments' metatable in the registry.
pub const ENV_MT_KEY: &str = "assay.env_mt";

/// Where `Vm::new` leaves the hook runner in the registry.
pub const HOOK_RUNNER_KEY: &str = "assay.hook_runner";

pub const ENV_PARAMETER: &str = "local _ENV = ...; ";

/// A Lua state with the stdlib installed and the flows it has compiled so far.
pub struct Vm {
    pub lua: Lua,
    runner: Function,
    budgeted: Function,
    require: Function,
    env_mt: Table,
    budget_exceeded: Arc<AtomicBool>,
    /// Compiled chunks by flow index: each flow is compiled once per state.
    chunks: HashMap<usize, Function>,
    cached_runner: Function,
    scan: Function,
    /// Per flow index, what its top level registered when this state ran it once: the handlers
    /// (a sequence by ordinal, with their upvalue snapshot), or `None` when they reach mutable
    /// state and the flow must re-run its top level for every request.
    handlers: HashMap<usize, Option<Table>>,
}

impl Vm {
    pub fn new(shared: Arc<Shared>, memory_limit: usize) -> mlua::Result<Vm> {
        let bindings = shared.bindings;
        // SAFETY: the debug library is unsafe only in the hands of Lua code; it is removed from
        // the globals below, before any chunk runs, and only `debug.getupvalue` and
        // `debug.getinfo` (which only read) are kept, held by the engine's SCAN and CACHED_RUNNER.
        let lua = unsafe {
            Lua::unsafe_new_with(
                StdLib::STRING | StdLib::TABLE | StdLib::MATH | StdLib::UTF8 | StdLib::OS | StdLib::DEBUG,
                LuaOptions::new(),
            )
        };
        let debug: Table = lua.globals().raw_get("debug")?;
        let (getupvalue, getinfo): (Function, Function) = (debug.raw_get("getupvalue")?, debug.raw_get("getinfo")?);
        lua.globals().raw_set("debug", Value::Nil)?;
        let frozen = lua.create_table()?;
        let weak = lua.create_table()?;
        weak.raw_set("__mode", "k")?;
        frozen.set_metatable(Some(weak));
        lua.set_named_registry_value(FROZEN_KEY, frozen.clone())?;
        lua.set_memory_limit(memory_limit)?;
        // Pattern functions the budget can stop, and no `string.dump` (see strfns.rs).
        super::strfns::install(&lua)?;
        // Nearly everything a request allocates (its environment, request table, closures)
        // dies with the request: generational collection suits that (0 = Lua's defaults).
        lua.gc_gen(0, 0);
        let budget = Budget::default();
        let exceeded = budget.exceeded.clone();
        lua.set_app_data(budget);
        lua.set_app_data(shared);
        lua.set_app_data(Phase::Load);

        let globals = lua.globals();
        // Nothing reads files, not even the trusted Lua-written stdlib modules that run with
        // these globals.
        for name in ["dofile", "loadfile"] {
            globals.raw_set(name, Value::Nil)?;
        }
        let allowed = lua.create_table()?;
        for name in ALLOWED_BASE {
            allowed.raw_set(*name, globals.raw_get::<Value>(*name)?)?;
        }
        for (lib, only) in ALLOWED_LIBS {
            let real: Table = globals.raw_get(*lib)?;
            let source = match only {
                None => real,
                Some(names) => {
                    let subset = lua.create_table()?;
                    for n in *names {
                        subset.raw_set(*n, real.raw_get::<Value>(*n)?)?;
                    }
                    subset
                }
            };
            allowed.raw_set(*lib, read_only(&lua, source, lib)?)?;
        }
        let flag = exceeded.clone();
        let check = lua.create_function(move |_, ()| Ok(flag.load(Ordering::Relaxed)))?;
        let is_failure = lua.create_function(|lua, v: Value| Ok(matches!(&v, Value::Table(t) if super::Failure::is_failure(lua, t))))?;
        let (pcall, xpcall, error, assert): (Function, Function, Function, Function) = lua.load(PRELUDE).set_name("=sandbox").call((
            check,
            globals.raw_get::<Function>("pcall")?,
            globals.raw_get::<Function>("xpcall")?,
            globals.raw_get::<Function>("select")?,
            globals.raw_get::<Function>("error")?,
            is_failure,
            globals.raw_get::<Function>("tostring")?,
            globals.raw_get::<Function>("assert")?,
        ))?;
        allowed.raw_set("pcall", pcall)?;
        allowed.raw_set("xpcall", xpcall)?;
        allowed.raw_set("error", error)?;
        allowed.raw_set("assert", assert)?;
        allowed.raw_set("unpack", lua.globals().raw_get::<Table>("table")?.raw_get::<Value>("unpack")?)?;
        allowed.raw_set("print", lua.create_function(print)?)?;

        // Reading a name that is neither local nor allowed is a mistake: say so.
        let strict = lua.create_table()?;
        strict.raw_set(
            "__index",
            lua.create_function(|_, (_t, k): (Table, Value)| -> mlua::Result<Value> {
                Err(mlua::Error::runtime(format!("undeclared global '{}'", key_name(&k))))
            })?,
        )?;
        strict.raw_set("__newindex", lua.create_function(deny_global)?)?;
        strict.raw_set("__metatable", false)?;
        allowed.set_metatable(Some(strict));

        let env_mt = lua.create_table()?;
        env_mt.raw_set("__index", allowed.clone())?;
        env_mt.raw_set("__newindex", lua.create_function(deny_global)?)?;
        env_mt.raw_set("__metatable", false)?;
        // Flow libraries run in environments of their own over the same allow-list.
        lua.set_named_registry_value(ENV_MT_KEY, env_mt.clone())?;
        let require = (bindings.require)(&lua)?;
        allowed.raw_set("require", require.clone())?;
        let request_mt = (bindings.request_metatable)(&lua)?;

        // The handler the request's re-run registered; from here on the phase is "request".
        let take_handler = lua.create_function(|lua, ()| {
            let taken = {
                let mut run = lua.app_data_mut::<RequestRun>().ok_or_else(|| mlua::Error::runtime("no request is being served"))?;
                match run.handler.take() {
                    Some(Ok(handler)) => Ok(handler),
                    _ => Err(mlua::Error::runtime(format!(
                        "flow {} registered different routes than at start-up; routes must not depend on the request",
                        run.flow
                    ))),
                }
            };
            lua.set_app_data(Phase::Request);
            taken
        })?;
        // mlua delivers an instruction hook only to the thread it was set on, and each async
        // call runs in a (recycled) coroutine of its own: so the first thing every call does is
        // put the budget hook on the thread it runs in (inside a callback, `lua` is that thread).
        let arm_budget = lua.create_function(|lua, ()| {
            lua.set_hook(HookTriggers::new().every_nth_instruction(1000), budget_hook);
            Ok(())
        })?;
        let budgeted = lua.load(BUDGETED).set_name("=budgeted").call(arm_budget.clone())?;
        let hook_runner: Function = lua.load(HOOK_RUNNER).set_name("=hook_runner").call((
            arm_budget.clone(),
            env_mt.clone(),
            globals.raw_get::<Function>("setmetatable")?,
            globals.raw_get::<Function>("type")?,
            globals.raw_get::<Function>("error")?,
        ))?;
        lua.set_named_registry_value(HOOK_RUNNER_KEY, hook_runner)?;
        let cached_runner = lua.load(CACHED_RUNNER).set_name("=cached_runner").call((
            arm_budget.clone(),
            request_mt.clone(),
            globals.raw_get::<Function>("setmetatable")?,
            getupvalue.clone(),
            globals.raw_get::<Function>("rawequal")?,
        ))?;
        let scan = lua.load(SCAN).set_name("=scan").call((getupvalue, getinfo, globals.raw_get::<Function>("type")?, frozen))?;
        let runner = lua.load(RUNNER).set_name("=runner").call((
            arm_budget,
            take_handler,
            env_mt.clone(),
            request_mt,
            globals.raw_get::<Function>("setmetatable")?,
        ))?;

        Ok(Vm {
            lua,
            runner,
            budgeted,
            require,
            env_mt,
            budget_exceeded: exceeded,
            chunks: HashMap::new(),
            cached_runner,
            scan,
            handlers: HashMap::new(),
        })
    }

    /// Calls `f` under the run budget, as an async call (so it may await stdlib I/O).
    pub async fn call<R: FromLuaMulti>(&self, f: Function, args: impl IntoLuaMulti) -> mlua::Result<R> {
        let mut all = args.into_lua_multi(&self.lua)?;
        all.push_front(Value::Function(f));
        self.budgeted.call_async::<R>(all).await
    }

    /// `require(name)` as a flow would call it, under the budget (start-up loads every flow
    /// library this way, to fail early on one that does not load).
    pub async fn require(&self, name: &str) -> mlua::Result<Value> {
        self.call::<Value>(self.require.clone(), name.to_string()).await
    }

    /// Serves one request with [`RUNNER`]: the flow's top level, then its wanted handler.
    pub async fn run_request(&self, chunk: Function, method: mlua::String, path: mlua::String) -> mlua::Result<Value> {
        self.runner.call_async((chunk, method, path)).await
    }

    /// What this state knows of a flow's handlers: nothing yet (`None`), handlers it keeps
    /// (`Some(Some(_))`), or that the flow re-runs its top level per request (`Some(None)`).
    pub fn handlers(&self, index: usize) -> Option<Option<Table>> {
        self.handlers.get(&index).cloned()
    }

    /// Keeps the handlers a run of the flow's top level registered (by ordinal) if they reach no
    /// mutable state (see [`SCAN`]); otherwise notes that the flow re-runs per request.
    pub fn cache_handlers(&mut self, index: usize, handlers: Vec<Function>) -> mlua::Result<()> {
        let seq = self.lua.create_sequence_from(handlers)?;
        let kept: Option<Table> = self.scan.call(seq)?;
        self.handlers.insert(index, kept);
        Ok(())
    }

    /// Forgets a flow's handlers; `rerun` says whether the flow should re-run its top level per
    /// request from now on (it assigned an upvalue) or be loaded again (a request failed).
    pub fn drop_handlers(&mut self, index: usize, rerun: bool) {
        if rerun {
            self.handlers.insert(index, None);
        } else {
            self.handlers.remove(&index);
        }
    }

    /// Serves one request with a kept handler ([`CACHED_RUNNER`]); `ordinal` counts from 0.
    /// The flag is false when the handler assigned an upvalue: drop the handlers.
    pub async fn run_cached(
        &self,
        handlers: Table,
        ordinal: usize,
        method: mlua::String,
        path: mlua::String,
    ) -> mlua::Result<(Value, bool)> {
        self.cached_runner.call_async((handlers, ordinal + 1, method, path)).await
    }

    /// Marks a table as read-only for [`SCAN`] (its writes raise and its metatable is locked).
    pub fn freeze(&self, t: &Table) -> mlua::Result<()> {
        self.lua.named_registry_value::<Table>(FROZEN_KEY)?.raw_set(t.clone(), true)
    }

    /// A fresh global environment: nothing a previous run set is visible in it.
    pub fn fresh_env(&self) -> mlua::Result<Table> {
        let env = self.lua.create_table()?;
        env.set_metatable(Some(self.env_mt.clone()));
        Ok(env)
    }

    /// The flow's compiled chunk, compiling it on first use in this state. Call it with its
    /// environment as the argument (see [`ENV_PARAMETER`]).
    pub fn chunk(&mut self, index: usize, name: &str, source: &str) -> mlua::Result<Function> {
        if let Some(f) = self.chunks.get(&index) {
            return Ok(f.clone());
        }
        let text = format!("{ENV_PARAMETER}{source}");
        let f = self.lua.load(text).set_name(format!("@flows/{name}")).into_function()?;
        self.chunks.insert(index, f.clone());
        Ok(f)
    }

    pub fn set_phase(&self, phase: Phase) {
        self.lua.set_app_data(phase);
    }

    /// Starts the run budget: CPU-bound code past `deadline` is stopped by the hook.
    pub fn start_budget(&self, deadline: Instant) {
        self.budget_exceeded.store(false, Ordering::Relaxed);
        if let Some(mut b) = self.lua.app_data_mut::<Budget>() {
            b.deadline = Some(deadline);
            b.last_yield.set(None);
        }
    }

    pub fn stop_budget(&self) {
        if let Some(mut b) = self.lua.app_data_mut::<Budget>() {
            b.deadline = None;
        }
    }

    pub fn budget_was_exceeded(&self) -> bool {
        self.budget_exceeded.load(Ordering::Relaxed)
    }
}

/// Stops CPU-bound Lua once the deadline has passed, and keeps stopping it: a `pcall` that
/// catches the first error runs into the next one 1000 instructions later. Until then it yields
/// the coroutine every [`YIELD_EVERY`] (mlua turns that yield into a `Pending` that wakes
/// itself), so a long computation shares its tokio worker instead of holding up the tasks
/// queued behind it: a request never waits on another request's Lua.
fn budget_hook(lua: &Lua, _debug: mlua::Debug) -> mlua::Result<VmState> {
    let Some(b) = lua.app_data_ref::<Budget>() else { return Ok(VmState::Continue) };
    let now = Instant::now();
    b.check(now)?;
    match b.last_yield.get() {
        Some(last) if now.duration_since(last) < YIELD_EVERY => Ok(VmState::Continue),
        Some(_) => {
            b.last_yield.set(Some(now));
            Ok(VmState::Yield)
        }
        None => {
            b.last_yield.set(Some(now));
            Ok(VmState::Continue)
        }
    }
}

/// A proxy whose reads go to `target` and whose writes raise.
pub fn read_only(lua: &Lua, target: Table, name: &str) -> mlua::Result<Table> {
    let proxy = lua.create_table()?;
    let mt = lua.create_table()?;
    mt.raw_set("__index", target)?;
    let name = name.to_string();
    mt.raw_set(
        "__newindex",
        lua.create_function(move |_, (_t, k, _v): (Table, Value, Value)| -> mlua::Result<()> {
            Err(mlua::Error::runtime(format!("{name} is read-only (cannot set '{}')", key_name(&k))))
        })?,
    )?;
    mt.raw_set("__metatable", false)?;
    proxy.set_metatable(Some(mt));
    if let Ok(frozen) = lua.named_registry_value::<Table>(FROZEN_KEY) {
        frozen.raw_set(proxy.clone(), true)?;
    }
    Ok(proxy)
}

fn deny_global(_: &Lua, (_t, k, _v): (Table, Value, Value)) -> mlua::Result<()> {
    Err(mlua::Error::runtime(format!("assignment to undeclared global '{}' (declare it with `local`)", key_name(&k))))
}

fn key_name(k: &Value) -> String {
    match k {
        Value::String(s) => s.to_string_lossy(),
        other => format!("{other:?}"),
    }
}

/// `print` goes to stdout in operator scripts and to the log in flows (a server's stdout is
/// not a place anyone reads).
fn print(lua: &Lua, args: mlua::Variadic<Value>) -> mlua::Result<()> {
    let mut line = String::new();
    for (i, v) in args.iter().enumerate() {
        if i > 0 {
            line.push('\t');
        }
        line.push_str(&v.to_string()?);
    }
    match lua.app_data_ref::<Phase>().map(|p| *p) {
        Some(Phase::Script) => println!("{line}"),
        _ => tracing::info!(target: "flow", "{line}"),
    }
    Ok(())
}
