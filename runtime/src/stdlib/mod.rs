//! The `assay.*` standard library: one Rust file per module, each documented by
//! `stdlib/<name>.md`. `require("assay.<name>")` returns the module as a read-only table,
//! built once per Lua state. Modules written in Lua live in `stdlib/*.lua` and are embedded.

pub mod admin;
pub mod audit;
pub mod crypto;
pub mod env;
pub mod errors;
pub mod http;
pub mod json;
pub mod jwks;
pub mod jwt;
pub mod log;
pub mod mail;
pub mod oidc;
pub mod password;
pub mod session;
pub mod settings;
pub mod template;
pub mod throttle;
pub mod users;

use std::sync::Arc;

use mlua::{Function, Lua, Table, Value};
use rust_embed::RustEmbed;

use crate::identity::{Context, IdentityError};
use crate::lua::{require_phase, shared, Failure, LibSources, Outcome, Phase, RequestRun};
use crate::services::Services;

#[derive(RustEmbed)]
#[folder = "../stdlib/"]
#[include = "*.lua"]
struct LuaModules;

type Builder = fn(&Lua) -> mlua::Result<Table>;

/// What the Lua host calls of the bindings (see `lua::Bindings`).
pub const BINDINGS: crate::lua::Bindings = crate::lua::Bindings {
    require: require_function,
    request_metatable: http::request_metatable,
    response_from: http::response_from,
    script_env: env::module,
};

/// Every Rust-implemented module, by the name flows require.
const RUST_MODULES: &[(&str, Builder)] = &[
    ("assay.http", http::module),
    ("assay.template", template::module),
    ("assay.log", log::module),
    ("assay.json", json::module),
    ("assay.crypto", crypto::module),
    ("assay.env", env::module),
    ("assay.errors", errors::module),
    ("assay.users", users::module),
    ("assay.password", password::module),
    ("assay.session", session::module),
    ("assay.audit", audit::module),
    ("assay.mail", mail::module),
    ("assay.throttle", throttle::module),
    ("assay.admin", admin::module),
    ("assay.settings", settings::module),
    ("assay.jwks", jwks::module),
    ("assay.jwt", jwt::module),
    ("assay.oidc", oidc::module),
];

/// The identity services for a stdlib call made in one of `phases`; raises where there are
/// none (an operator script has no database: it talks to the admin API instead).
pub(crate) fn identity(lua: &Lua, function: &str, phases: &[Phase]) -> mlua::Result<Arc<Services>> {
    require_phase(lua, function, phases)?;
    shared(lua)?
        .identity
        .clone()
        .ok_or_else(|| mlua::Error::runtime(format!("{function} needs the engine's database, which this Lua state does not have")))
}

/// Who is calling, from the request being served (empty in scripts).
pub(crate) fn context(lua: &Lua) -> Context {
    match lua.app_data_ref::<RequestRun>() {
        Some(run) => Context {
            ip: Some(run.request.ip.clone()),
            request_id: Some(run.request.request_id.clone()),
            user_agent: run.request.header("user-agent"),
        },
        None => Context::default(),
    }
}

/// An identity result for Lua: the value, `nil, err` for an operational failure (its code,
/// message and details), or a raised error for an engine fault (a 500 with the cause in the
/// log).
pub(crate) fn outcome<T>(r: Result<T, IdentityError>) -> mlua::Result<Outcome<T>> {
    match r {
        Ok(v) => Ok(Outcome::Ok(v)),
        Err(e) if e.is_operational() => {
            // The person's message leaves the cause out (an SMTP server's answer, say): the
            // log keeps it.
            if matches!(e, IdentityError::Mail(_)) {
                tracing::warn!(error = %e, "mail not sent");
            }
            Ok(Outcome::Fail(failure(&e)))
        }
        Err(e) => Err(mlua::Error::external(e)),
    }
}

/// An identity error as the Lua failure: typed code, the person's message, the details.
pub(crate) fn failure(e: &IdentityError) -> Failure {
    Failure { code: e.code().as_str().to_string(), message: e.message(), details: e.details() }
}

/// Any serializable value as a Lua value (through JSON, so arrays stay arrays).
pub(crate) fn to_lua<T: serde::Serialize>(lua: &Lua, v: &T) -> mlua::Result<Value> {
    let json = serde_json::to_value(v).map_err(mlua::Error::external)?;
    json::from_json(lua, &json)
}

/// `opts.limit` as a page size (default 50), raising outside 1..=200.
pub(crate) fn page_limit(function: &str, opts: Option<&Table>) -> mlua::Result<i64> {
    let limit = match opts {
        Some(t) => t.get::<Option<i64>>("limit")?,
        None => None,
    };
    match limit {
        None => Ok(50),
        Some(n) if (1..=crate::identity::users::MAX_PAGE).contains(&n) => Ok(n),
        Some(n) => Err(mlua::Error::runtime(format!("{function}: limit {n} is outside 1..200"))),
    }
}

pub(crate) fn opt_string(t: Option<&Table>, key: &str) -> mlua::Result<Option<String>> {
    opt_field(t, key)
}

/// `t[key]` of an optional options table, absent when either is.
pub(crate) fn opt_field<T: mlua::FromLua>(t: Option<&Table>, key: &str) -> mlua::Result<Option<T>> {
    match t {
        Some(t) => t.get::<Option<T>>(key),
        None => Ok(None),
    }
}

/// [`outcome`], with the value turned into a Lua value ([`to_lua`]).
pub(crate) fn outcome_lua<T: serde::Serialize>(lua: &Lua, r: Result<T, IdentityError>) -> mlua::Result<Outcome<Value>> {
    match outcome(r)? {
        Outcome::Ok(v) => Ok(Outcome::Ok(to_lua(lua, &v)?)),
        Outcome::Fail(e) => Ok(Outcome::Fail(e)),
    }
}

pub fn module_names() -> Vec<String> {
    let mut names: Vec<String> = RUST_MODULES.iter().map(|(n, _)| n.to_string()).collect();
    names.extend(LuaModules::iter().filter_map(|f| f.strip_suffix(".lua").map(|s| format!("assay.{s}"))));
    names
}

/// The sandbox's `require`: stdlib modules (`assay.*`) and flow libraries (`lib.*`, the
/// files under `flows/lib/`), each built once per state. The cache lookup is plain Lua (every
/// flow requires its modules on every request); only a miss calls Rust.
///
/// A library runs like a flow (compiled from its source, in a fresh environment over the same
/// allow-list) but in [`Phase::Library`], where no phase-bound stdlib function works (so it
/// cannot register routes or touch the database while loading), and it must return a table,
/// which is cached read-only. Its top level runs in Lua, not from a Rust callback, so the
/// budget hook can stop or yield it like any flow code.
pub fn require_function(lua: &Lua) -> mlua::Result<Function> {
    const REQUIRE: &str = r#"
local loaded, load_module, load_library, finish_library, raw_pcall, error = ...
return function(name)
  local m = loaded[name]
  if m == nil then
    local chunk, env, restore = load_library(name)
    if chunk then
      local ok, result = raw_pcall(chunk, env)
      restore()
      if not ok then error(result, 0) end
      m = finish_library(name, result)
    else
      m = load_module(name)
    end
    loaded[name] = m
  end
  return m
end
"#;
    let load_module = lua.create_function(|lua, name: String| {
        let module = build(lua, &name)?;
        crate::lua::sandbox::read_only(lua, module, &name)
    })?;
    let finish_library = lua.create_function(|lua, (name, value): (String, Value)| match value {
        Value::Table(t) => crate::lua::sandbox::read_only(lua, t, &name),
        other => Err(mlua::Error::runtime(format!("flow library {name} must return a table (it returned {})", other.type_name()))),
    })?;
    let globals = lua.globals();
    lua.load(REQUIRE).set_name("=require").call((
        lua.create_table()?,
        load_module,
        lua.create_function(load_library)?,
        finish_library,
        globals.raw_get::<Function>("pcall")?,
        globals.raw_get::<Function>("error")?,
    ))
}

/// For `lib.<name>`: the library's compiled chunk, a fresh environment to run it in, and a
/// function that puts the phase back once it has run. Nothing for other names.
fn load_library(lua: &Lua, name: String) -> mlua::Result<mlua::MultiValue> {
    use mlua::IntoLuaMulti;
    if !name.starts_with("lib.") {
        return Value::Nil.into_lua_multi(lua);
    }
    let Some(libs) = lua.app_data_ref::<Arc<LibSources>>().map(|l| l.clone()) else {
        return Err(mlua::Error::runtime(format!("module '{name}': flow libraries can be required by flows only")));
    };
    let Some(lib) = libs.get(&name) else {
        let file = format!("{}.lua", name.replace('.', "/"));
        return Err(mlua::Error::runtime(format!(
            "module '{name}' not found: there is no flows/{file}, bundled or in [flows] dir (libraries: {})",
            libs.module_names().join(", ")
        )));
    };
    let chunk = lua
        .load(format!("{}{}", crate::lua::sandbox::ENV_PARAMETER, lib.source))
        .set_name(format!("@flows/{}", lib.name))
        .into_function()?;
    let env = lua.create_table()?;
    env.set_metatable(Some(lua.named_registry_value::<Table>(crate::lua::sandbox::ENV_MT_KEY)?));
    let previous = crate::lua::phase(lua);
    lua.set_app_data(Phase::Library);
    let restore = lua.create_function(move |lua, ()| {
        lua.set_app_data(previous);
        Ok(())
    })?;
    (chunk, env, restore).into_lua_multi(lua)
}

fn build(lua: &Lua, name: &str) -> mlua::Result<Table> {
    if let Some((_, builder)) = RUST_MODULES.iter().find(|(n, _)| *n == name) {
        return builder(lua);
    }
    let file = name.strip_prefix("assay.").map(|s| format!("{s}.lua"));
    match file.as_deref().and_then(LuaModules::get) {
        Some(src) => {
            let chunk = lua
                .load(String::from_utf8_lossy(&src.data).as_ref())
                .set_name(format!("@stdlib/{}", file.unwrap_or_default()))
                .into_function()?;
            // A Lua-written module gets `require` as its argument (`local require = ...`): it
            // runs with the state's own globals, which have no `require` of their own.
            chunk.call(require_function(lua)?)
        }
        None => Err(mlua::Error::runtime(format!("module '{name}' not found (available: {})", module_names().join(", ")))),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod kept_handler_tests {
    use std::sync::Arc;
    use std::time::Instant;

    use crate::config::Config;
    use crate::lua::{LuaHost, Shared};
    use crate::templates::Templates;

    /// The bundled flows a request hits most keep their handlers in each state (no top-level
    /// re-run per request), and one with a file-level table does not.
    #[tokio::test]
    async fn which_bundled_flows_are_kept() {
        let config = Config::from_toml_str("", None).expect("config");
        let shared = Arc::new(Shared {
            bindings: super::BINDINGS,
            config: Arc::new(config),
            templates: Templates::new(None),
            db: None,
            client: reqwest::Client::new(),
            identity: None,
        });
        let host = LuaHost::new(shared).await.expect("host");
        let mut vm = host.new_vm().expect("vm");
        for (name, kept) in [("oidc.lua", true), ("hello.lua", true), ("login.lua", false)] {
            let index = host.flows.iter().position(|f| f.name == name).expect(name);
            vm.start_budget(Instant::now() + host.budget);
            host.load_handlers(&mut vm, index).await.expect("load");
            vm.stop_budget();
            assert_eq!(matches!(vm.handlers(index), Some(Some(_))), kept, "{name}");
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod error_answer_tests {
    use mlua::{IntoLua, Lua};

    use crate::lua::Failure;

    /// A handler that passes a refusal on (`return err`, as admin flows did with the response
    /// `admin.require` used to give) is answered with the code's status, not a 500.
    #[test]
    fn a_returned_error_is_answered_with_its_status() {
        let lua = Lua::new();
        let err = Failure::new("unauthorized", "send a key").into_lua(&lua).unwrap();
        let resp = super::http::response_from(&lua, err).unwrap();
        assert_eq!(resp.status, 401);
        assert!(String::from_utf8_lossy(&resp.body).contains("\"error\":\"unauthorized\""));
        let throttled = Failure::new("throttled", "wait").detail("retry_after", 9u64).into_lua(&lua).unwrap();
        let resp = super::http::response_from(&lua, throttled).unwrap();
        assert_eq!(resp.status, 429);
        assert!(resp.headers.iter().any(|(n, v)| n == http::header::RETRY_AFTER && v == "9"));
        // A plain table is still a handler bug.
        assert!(super::http::response_from(&lua, mlua::Value::Table(lua.create_table().unwrap())).is_err());
    }
}
