//! The `assay.*` standard library: one Rust file per module, each documented by
//! `stdlib/<name>.md`. `require("assay.<name>")` returns the module as a read-only table,
//! built once per Lua state. Modules written in Lua live in `stdlib/*.lua` and are embedded.

pub mod crypto;
pub mod env;
pub mod http;
pub mod json;
pub mod log;
pub mod template;

use mlua::{Function, Lua, Table};
use rust_embed::RustEmbed;

#[derive(RustEmbed)]
#[folder = "../stdlib/"]
#[include = "*.lua"]
struct LuaModules;

type Builder = fn(&Lua) -> mlua::Result<Table>;

/// Every Rust-implemented module, by the name flows require.
const RUST_MODULES: &[(&str, Builder)] = &[
    ("assay.http", http::module),
    ("assay.template", template::module),
    ("assay.log", log::module),
    ("assay.json", json::module),
    ("assay.crypto", crypto::module),
    ("assay.env", env::module),
];

pub fn module_names() -> Vec<String> {
    let mut names: Vec<String> = RUST_MODULES.iter().map(|(n, _)| n.to_string()).collect();
    names.extend(LuaModules::iter().filter_map(|f| f.strip_suffix(".lua").map(|s| format!("assay.{s}"))));
    names
}

/// The sandbox's `require`: only stdlib modules, built once per state. The cache lookup is
/// plain Lua (every flow requires its modules on every request); only a miss calls Rust.
pub fn require_function(lua: &Lua) -> mlua::Result<Function> {
    const REQUIRE: &str = r#"
local loaded, load_module = {}, ...
return function(name)
  local m = loaded[name]
  if m == nil then
    m = load_module(name)
    loaded[name] = m
  end
  return m
end
"#;
    let load_module = lua.create_function(|lua, name: String| {
        let module = build(lua, &name)?;
        crate::lua::sandbox::read_only(lua, module, &name)
    })?;
    lua.load(REQUIRE).set_name("=require").call(load_module)
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
            chunk.call(())
        }
        None => Err(mlua::Error::runtime(format!(
            "module '{name}' not found (available: {})",
            module_names().join(", ")
        ))),
    }
}
