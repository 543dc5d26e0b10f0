//! The Lua host: flows register routes, requests run them.
//!
//! Pooling (measured by `runtime/examples/lua_pool.rs`, figures in ARCHITECTURE.md): building
//! a state with the sandbox costs about a hundred microseconds and compiling a flow a few,
//! while a fresh environment table costs a fraction of one and a re-run of a flow's top level
//! about one. So states are kept in a pool and each one compiles each flow once; a request
//! takes a state from the pool (or builds one when none is idle, so a request never waits on
//! another's Lua), calls the handler, and puts the state back. The handler is one the state
//! made by running the flow's top level once, when a scan shows that nothing it reaches can
//! change in place and a check after each request shows it assigned none of its upvalues;
//! otherwise the flow's chunk runs again in a fresh environment for the request, to get fresh
//! handler closures (`sandbox::Vm::cache_handlers`, ARCHITECTURE.md "Lua states"). No value set
//! by one request can be seen by the next.

pub mod budget;
pub mod failure;
pub mod flows;
pub mod patterns;
pub mod request;
pub mod sandbox;
pub mod strfns;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use mlua::{Function, Lua, Value};

use crate::config::Config;
pub use crate::request::HttpRequest;
use crate::storage::Db;
use crate::templates::Templates;
pub use failure::Failure;
pub use flows::{FlowError, FlowSource, LibSources, RouteEntry, RouteMatch, RouteTable};
pub use request::RequestRun;
use sandbox::Vm;

/// Where a call is being made; stdlib functions check it (Kong's phases, our request kinds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// A flow's top level: registering routes.
    Load,
    /// A route handler serving a request.
    Request,
    /// An operator script under `assay-engine run`.
    Script,
    /// The claims hook (`flows/claims.lua`) adding claims to a token or userinfo: it may read
    /// (users, clients, keys, the audit log, outbound HTTP) but never change the engine's state.
    Claims,
    /// A flow library's top level (`flows/lib/*.lua`), which runs once per Lua state and is
    /// cached: it may only define things, so no stdlib call that needs a phase works there,
    /// `http.route` included.
    Library,
}

/// Where a function that only reads may run: handlers and the claims hook.
pub const READ_PHASES: &[Phase] = &[Phase::Request, Phase::Claims];

impl Phase {
    pub fn describe(self) -> &'static str {
        match self {
            Phase::Load => "a flow's top level",
            Phase::Request => "a request handler",
            Phase::Script => "an operator script",
            Phase::Claims => "the claims hook",
            Phase::Library => "a flow library's top level",
        }
    }
}

/// What the host needs of the `assay.*` bindings, handed in by whoever builds the host
/// (`stdlib::BINDINGS`). The bindings sit above the host: they use its types and it reaches
/// them only through these four functions, so the two do not import each other.
#[derive(Clone, Copy)]
pub struct Bindings {
    /// The sandbox's `require`, which serves the `assay.*` modules and the flow libraries.
    pub require: fn(&Lua) -> mlua::Result<Function>,
    /// The metatable of the request table a handler receives (its lazy fields).
    pub request_metatable: fn(&Lua) -> mlua::Result<mlua::Table>,
    /// A handler's return value as a response.
    pub response_from: fn(&Lua, Value) -> mlua::Result<FlowResponse>,
    /// An operator script's `env` global.
    pub script_env: fn(&Lua) -> mlua::Result<mlua::Table>,
}

/// What every stdlib function may reach, shared by all states.
pub struct Shared {
    pub bindings: Bindings,
    pub config: Arc<Config>,
    pub templates: Templates,
    pub db: Option<Db>,
    pub client: reqwest::Client,
    /// Users, sessions, passwords, audit and mail; `None` for operator scripts.
    pub identity: Option<Arc<crate::services::Services>>,
}

/// A response a flow built with `assay.http`.
#[derive(Debug, Clone)]
pub struct FlowResponse {
    pub status: u16,
    pub headers: Vec<(http::HeaderName, http::HeaderValue)>,
    pub cookies: Vec<http::HeaderValue>,
    pub body: Bytes,
}

/// Why a flow run failed. The message is for the log, never for the client.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("{0}")]
    Lua(String),
    #[error("the flow ran longer than its budget of {0} ms and was stopped")]
    Budget(u64),
}

pub struct LuaHost {
    shared: Arc<Shared>,
    pub(crate) flows: Vec<FlowSource>,
    /// Per flow, the routes its top level registered at start-up, by ordinal: a state that
    /// runs the top level again must find the same ones.
    flow_routes: Vec<Vec<(String, String)>>,
    routes: RouteTable,
    pool: Mutex<Vec<Vm>>,
    hooks: Arc<HookSources>,
    libs: Arc<LibSources>,
    pub(crate) budget: Duration,
    memory_limit: usize,
    pool_size: usize,
}

/// The sources of hook flows (files whose top level returns a function, such as
/// `claims.lua`), by file name, for stdlib calls that run them.
#[derive(Debug, Default)]
pub struct HookSources(pub Vec<(String, String)>);

impl HookSources {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, s)| s.as_str())
    }
}

/// Flows the engine calls as hooks rather than routes.
pub const HOOK_FLOWS: &[&str] = &["claims.lua"];

/// Handlers `http.route` collected while the engine learns a flow's routes at start-up.
#[derive(Default)]
pub struct RouteCollector(pub Vec<(String, String, Function)>);

impl LuaHost {
    /// Loads bundled and overriding flows and learns their routes by running each once.
    pub async fn new(shared: Arc<Shared>) -> Result<LuaHost, FlowError> {
        let cfg = &shared.config.flows;
        let (flows, libs) = flows::load_sources(cfg.dir.as_deref())?;
        // The bundled hooks add nothing (claims.lua returns nil), so only an operator's
        // override is ever called: a token request without one pays no Lua call for it.
        let hooks = Arc::new(HookSources(
            flows
                .iter()
                .filter(|f| HOOK_FLOWS.contains(&f.name.as_str()) && matches!(f.origin, flows::Origin::Override(_)))
                .map(|f| (f.name.clone(), f.source.clone()))
                .collect(),
        ));
        let mut host = LuaHost {
            hooks,
            libs: Arc::new(libs),
            budget: Duration::from_millis(cfg.budget_ms),
            memory_limit: cfg.memory_limit_bytes(),
            pool_size: cfg.pool_size,
            shared,
            flows,
            flow_routes: Vec::new(),
            routes: RouteTable::default(),
            pool: Mutex::new(Vec::new()),
        };
        let mut vm = host.new_vm().map_err(|e| FlowError::Load { name: "<sandbox>".into(), message: e.to_string() })?;
        // Every library loads once here, so that one which does not compile (or fails at its
        // top level) stops start-up rather than the first request that needs it.
        for name in host.libs.module_names() {
            vm.start_budget(Instant::now() + host.budget);
            let loaded = vm.require(&name).await;
            vm.stop_budget();
            loaded.map_err(|e| FlowError::Load { name: format!("{}.lua", name.replace('.', "/")), message: e.to_string() })?;
        }
        let mut table = RouteTable::default();
        for index in 0..host.flows.len() {
            let name = host.flows[index].name.clone();
            let load_err = |message: String| FlowError::Load { name: name.clone(), message };
            // The top level runs under the same budget as a request: a loop there must not
            // hang start-up.
            vm.start_budget(Instant::now() + host.budget);
            let ran = host.run_top_level(&mut vm, index).await;
            vm.stop_budget();
            let (handlers, returned) = ran.map_err(|e| load_err(e.to_string()))?;
            // A hook flow is called for its function: a file that returns none fails here, at
            // start-up, not at every token.
            if HOOK_FLOWS.contains(&name.as_str()) && !matches!(returned, Value::Function(_)) {
                return Err(load_err(format!("a hook flow must return a function (it returned {})", returned.type_name())));
            }
            host.flow_routes.push(handlers.iter().map(|(m, p, _)| (m.clone(), p.clone())).collect());
            for (ordinal, (method, path, _)) in handlers.into_iter().enumerate() {
                let pattern = flows::PathPattern::parse(&path).map_err(load_err)?;
                if matches!(path.as_str(), "/healthz" | "/readyz") {
                    return Err(load_err(format!("{path} is served by the engine itself")));
                }
                table.add(RouteEntry { method, pattern, flow: index, ordinal }, &host.flows)?;
            }
        }
        host.routes = table;
        host.check_in(vm);
        Ok(host)
    }

    pub fn routes(&self) -> &RouteTable {
        &self.routes
    }

    pub fn flows(&self) -> &[FlowSource] {
        &self.flows
    }

    pub(crate) fn new_vm(&self) -> mlua::Result<Vm> {
        let vm = Vm::new(self.shared.clone(), self.memory_limit)?;
        vm.lua.set_app_data(self.hooks.clone());
        vm.lua.set_app_data(self.libs.clone());
        Ok(vm)
    }

    fn check_out(&self) -> mlua::Result<Vm> {
        let idle = self.pool.lock().ok().and_then(|mut p| p.pop());
        match idle {
            Some(vm) => Ok(vm),
            None => self.new_vm(),
        }
    }

    fn check_in(&self, vm: Vm) {
        if let Ok(mut p) = self.pool.lock() {
            if p.len() < self.pool_size {
                p.push(vm);
            }
        }
    }

    /// Runs a flow's top level in a fresh environment and returns the handlers it registered.
    async fn run_top_level(&self, vm: &mut Vm, index: usize) -> mlua::Result<(Vec<(String, String, Function)>, Value)> {
        let flow = &self.flows[index];
        let chunk = vm.chunk(index, &flow.name, &flow.source)?;
        let env = vm.fresh_env()?;
        vm.set_phase(Phase::Load);
        vm.lua.set_app_data(RouteCollector::default());
        let ran = vm.call::<Value>(chunk, env).await;
        let collected = vm.lua.remove_app_data::<RouteCollector>().map(|c| c.0).unwrap_or_default();
        ran.map(|returned| (collected, returned))
    }

    /// Serves one request with the route's flow.
    pub async fn run_route(&self, entry: &RouteEntry, req: HttpRequest) -> Result<FlowResponse, RunError> {
        let mut vm = self.check_out().map_err(|e| RunError::Lua(format!("cannot create a Lua state: {e}")))?;
        vm.start_budget(Instant::now() + self.budget);
        let deadline = tokio::time::Instant::now() + self.budget;
        let outcome = within(deadline, self.call_handler(&mut vm, entry, req)).await;
        vm.stop_budget();
        let exceeded = vm.budget_was_exceeded();
        match outcome {
            None => Err(RunError::Budget(self.budget.as_millis() as u64)), // the state is dropped
            Some(_) if exceeded => Err(RunError::Budget(self.budget.as_millis() as u64)),
            Some(Err(e)) => {
                // A memory error may leave the state short of room: start afresh.
                if !matches!(e, mlua::Error::MemoryError(_)) {
                    self.check_in(vm);
                }
                Err(RunError::Lua(e.to_string()))
            }
            Some(Ok(resp)) => {
                self.check_in(vm);
                Ok(resp)
            }
        }
    }

    /// Runs a flow's top level once in this state (phase load, its own fresh environment) and
    /// keeps its handlers if they reach no mutable state (see `Vm::cache_handlers`).
    pub(crate) async fn load_handlers(&self, vm: &mut Vm, index: usize) -> mlua::Result<()> {
        let flow = &self.flows[index];
        let chunk = vm.chunk(index, &flow.name, &flow.source)?;
        let env = vm.fresh_env()?;
        vm.freeze(&env)?;
        vm.set_phase(Phase::Load);
        vm.lua.set_app_data(RouteCollector::default());
        let ran = vm.call::<Value>(chunk, env).await;
        let collected = vm.lua.remove_app_data::<RouteCollector>().map(|c| c.0).unwrap_or_default();
        ran?;
        let same = collected.len() == self.flow_routes[index].len()
            && collected.iter().zip(&self.flow_routes[index]).all(|((m, p, _), (m0, p0))| m == m0 && p == p0);
        if !same {
            return Err(mlua::Error::runtime(format!(
                "flow {} registered different routes than at start-up; routes must not depend on the request",
                flow.name
            )));
        }
        vm.cache_handlers(index, collected.into_iter().map(|(_, _, f)| f).collect())
    }

    /// Calls the wanted handler inside one Lua thread, so a request costs one async call: a
    /// handler the state keeps from its one run of the flow's top level, or, for a flow whose
    /// handlers reach mutable state, the handler of a re-run of the top level in a fresh
    /// environment (the state's runner).
    async fn call_handler(&self, vm: &mut Vm, entry: &RouteEntry, req: HttpRequest) -> mlua::Result<FlowResponse> {
        let flow = &self.flows[entry.flow];
        let kept = match vm.handlers(entry.flow) {
            Some(kept) => kept,
            None => {
                self.load_handlers(vm, entry.flow).await?;
                vm.handlers(entry.flow).flatten()
            }
        };
        let lua = vm.lua.clone();
        let (method, path) = (lua.create_string(&req.method)?, lua.create_string(&req.path)?);
        lua.set_app_data(RequestRun {
            request: Arc::new(req),
            ordinal: entry.ordinal,
            method: entry.method.clone(),
            path: entry.pattern.text.clone(),
            flow: flow.name.clone(),
            seen: 0,
            handler: None,
            cookies: Vec::new(),
            session: None,
        });
        let ret = match kept {
            Some(handlers) => {
                vm.set_phase(Phase::Request);
                match vm.run_cached(handlers, entry.ordinal, method, path).await {
                    Ok((value, unchanged)) => {
                        if !unchanged {
                            // The handler assigned an upvalue: what it stored must not reach the
                            // next request, so this flow re-runs its top level from now on.
                            tracing::debug!(flow = %flow.name, "a handler assigned an upvalue; its flow re-runs per request in this state");
                            vm.drop_handlers(entry.flow, true);
                        }
                        Ok(value)
                    }
                    Err(e) => {
                        // It may have assigned one before failing: load afresh next time.
                        vm.drop_handlers(entry.flow, false);
                        Err(e)
                    }
                }
            }
            None => {
                let chunk = vm.chunk(entry.flow, &flow.name, &flow.source)?;
                vm.set_phase(Phase::Load);
                vm.run_request(chunk, method, path).await
            }
        };
        let run = lua.remove_app_data::<RequestRun>();
        let mut resp = (self.shared.bindings.response_from)(&lua, ret?)?;
        // Cookies the stdlib set while serving (a new session, a CSRF cookie) go on whatever
        // response the handler returned.
        if let Some(run) = run {
            resp.cookies.extend(run.cookies);
        }
        Ok(resp)
    }

    /// Runs an operator script (`assay-engine run`) with `env` and `arg` as globals.
    pub async fn run_script(shared: Arc<Shared>, name: &str, source: &str, args: &[String]) -> Result<(), RunError> {
        let memory = shared.config.flows.memory_limit_bytes();
        let script_env = shared.bindings.script_env;
        let vm = Vm::new(shared, memory).map_err(|e| RunError::Lua(e.to_string()))?;
        vm.set_phase(Phase::Script);
        let env = vm.fresh_env().map_err(|e| RunError::Lua(e.to_string()))?;
        let setup = || -> mlua::Result<Function> {
            env.raw_set("env", script_env(&vm.lua)?)?;
            let arg = vm.lua.create_sequence_from(args.iter().cloned())?;
            arg.raw_set(0, name)?;
            env.raw_set("arg", arg)?;
            let chunk = vm.lua.load(source).set_name(format!("@{name}")).into_function()?;
            chunk.set_environment(env.clone())?;
            Ok(chunk)
        };
        let chunk = setup().map_err(|e| RunError::Lua(e.to_string()))?;
        let argv = mlua::Variadic::from_iter(args.iter().cloned());
        vm.call::<()>(chunk, argv).await.map_err(|e| RunError::Lua(e.to_string()))
    }
}

/// `fut`'s output, or `None` once `deadline` passes while it waits. The timer is set only when
/// `fut` first has to wait: a flow that never awaits I/O (most) costs no timer at all, and its
/// CPU time is bounded by the instruction hook instead.
async fn within<F: std::future::Future>(deadline: tokio::time::Instant, fut: F) -> Option<F::Output> {
    use std::future::Future;
    use std::task::Poll;
    let mut fut = std::pin::pin!(fut);
    let mut timer: Option<std::pin::Pin<Box<tokio::time::Sleep>>> = None;
    std::future::poll_fn(|cx| {
        if let Poll::Ready(out) = fut.as_mut().poll(cx) {
            return Poll::Ready(Some(out));
        }
        let timer = timer.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    })
    .await
}

/// The current phase of a state, for stdlib checks.
pub fn phase(lua: &Lua) -> Phase {
    lua.app_data_ref::<Phase>().map(|p| *p).unwrap_or(Phase::Load)
}

/// Raises unless the call is made in one of `allowed` phases (misuse raises; see STYLE.md).
pub fn require_phase(lua: &Lua, function: &str, allowed: &[Phase]) -> mlua::Result<()> {
    let now = phase(lua);
    if allowed.contains(&now) {
        return Ok(());
    }
    let where_ok: Vec<&str> = allowed.iter().map(|p| p.describe()).collect();
    Err(mlua::Error::runtime(format!("{function} cannot be called in {} (only in {})", now.describe(), where_ok.join(" or "))))
}

/// Shared state from inside a stdlib function.
pub fn shared(lua: &Lua) -> mlua::Result<Arc<Shared>> {
    lua.app_data_ref::<Arc<Shared>>().map(|s| s.clone()).ok_or_else(|| mlua::Error::runtime("engine context missing from this Lua state"))
}

/// What a stdlib call that can fail on its input or on the world returns: the value alone on
/// success, `nil, err` on failure, `err` a [`Failure`] table (misuse raises instead; see
/// STYLE.md).
pub enum Outcome<T> {
    Ok(T),
    Fail(Failure),
}

impl<T: mlua::IntoLua> mlua::IntoLuaMulti for Outcome<T> {
    fn into_lua_multi(self, lua: &Lua) -> mlua::Result<mlua::MultiValue> {
        match self {
            Outcome::Ok(v) => v.into_lua_multi(lua),
            Outcome::Fail(err) => (Value::Nil, err).into_lua_multi(lua),
        }
    }
}

/// `nil, err` with `err.code` and `err.message`.
pub fn fail<T>(code: &str, message: impl std::fmt::Display) -> mlua::Result<Outcome<T>> {
    Ok(Outcome::Fail(Failure::new(code, message.to_string())))
}
