//! The error half of `nil, err`: what a stdlib call returns when it fails on its input or on
//! the world (misuse raises instead; see STYLE.md). `err` is a table, so no flow parses English:
//!
//! ```lua
//! local user, err = users.create({ email = email })
//! if not user then
//!   if err.code == "conflict" then ... end      -- a stable code
//!   page.error = err.message                      -- text for the person
//!   local wait = err.retry_after                  -- details, when the code has any
//! end
//! ```
//!
//! `tostring(err)` (and `..`) give "code: message", for logs and for flows written against the
//! older string errors.

use mlua::{IntoLua, Lua, Table, Value};

/// A failure with a stable code, a message for the person, and structured details.
#[derive(Debug, Clone)]
pub struct Failure {
    pub code: String,
    pub message: String,
    pub details: serde_json::Map<String, serde_json::Value>,
}

impl Failure {
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Failure {
        Failure { code: code.into(), message: message.into(), details: serde_json::Map::new() }
    }

    pub fn detail(mut self, key: &str, value: impl Into<serde_json::Value>) -> Failure {
        self.details.insert(key.to_string(), value.into());
        self
    }

    /// Read back from Lua: a table with a `code` (what stdlib calls and `errors.new` return),
    /// or the older "code: message" string that flows built by hand before errors were tables.
    pub fn from_lua_value(v: &Value) -> Option<Failure> {
        match v {
            Value::Table(t) => {
                let code: String = t.get("code").ok()?;
                let message: String = t.get::<Option<String>>("message").ok().flatten().unwrap_or_default();
                let mut f = Failure::new(code, message);
                if let Ok(Some(secs)) = t.get::<Option<u64>>("retry_after") {
                    f = f.detail("retry_after", secs);
                }
                if let Ok(Some(field)) = t.get::<Option<String>>("field") {
                    f = f.detail("field", field);
                }
                Some(f)
            }
            Value::String(s) => {
                let s = s.to_str().ok()?.to_string();
                let (code, message) = s.split_once(": ").unwrap_or(("internal", s.as_str()));
                let code_like = !code.is_empty() && code.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
                if !code_like {
                    return Some(Failure::new("internal", s.as_str()));
                }
                let mut f = Failure::new(code, message);
                // The older strings carried the wait only in their text ("... in N seconds").
                if code == "throttled" || code == "busy" {
                    if let Some(secs) = message.split_whitespace().rev().find_map(|w| w.parse::<u64>().ok()) {
                        f = f.detail("retry_after", secs);
                    }
                }
                Some(f)
            }
            _ => None,
        }
    }

    /// Whether `t` is an error a stdlib call (or `errors.new`) made: it carries their metatable.
    pub fn is_failure(lua: &Lua, t: &Table) -> bool {
        match (t.metatable(), lua.named_registry_value::<Value>(METATABLE)) {
            (Some(mt), Ok(Value::Table(ours))) => mt == ours,
            _ => false,
        }
    }

    pub fn retry_after(&self) -> Option<u64> {
        self.details.get("retry_after").and_then(|v| v.as_u64())
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

const METATABLE: &str = "assay.failure";

/// "code: message" of a failure table; other values as `..` would join them.
fn text_of(v: &Value) -> mlua::Result<String> {
    match v {
        Value::Table(t) => {
            let code = t.raw_get::<Option<String>>("code")?.unwrap_or_default();
            Ok(format!("{code}: {}", t.raw_get::<Option<String>>("message")?.unwrap_or_default()))
        }
        Value::String(s) => Ok(s.to_str()?.to_string()),
        Value::Integer(i) => Ok(i.to_string()),
        Value::Number(n) => Ok(n.to_string()),
        other => Err(mlua::Error::runtime(format!("attempt to concatenate an error with a {}", other.type_name()))),
    }
}

/// One metatable per state: `__tostring` and `__concat` as "code: message".
fn metatable(lua: &Lua) -> mlua::Result<Table> {
    if let Ok(Value::Table(mt)) = lua.named_registry_value::<Value>(METATABLE) {
        return Ok(mt);
    }
    let mt = lua.create_table()?;
    mt.set("__tostring", lua.create_function(|_, v: Value| text_of(&v))?)?;
    mt.set("__concat", lua.create_function(|_, (a, b): (Value, Value)| Ok(format!("{}{}", text_of(&a)?, text_of(&b)?)))?)?;
    // `err:match(...)`, `err:find(...)` and the other string methods read the text, so flows
    // written against the older string errors keep working. Fields (`code`, `message`, the
    // details) are the table's own and never reach this.
    let string_lib: Table = lua.globals().get("string")?;
    mt.set(
        "__index",
        lua.create_function(move |lua, (_t, key): (Value, Value)| {
            let Value::String(name) = key else { return Ok(Value::Nil) };
            let Value::Function(f) = string_lib.get::<Value>(name)? else { return Ok(Value::Nil) };
            let method = lua.create_function(move |lua, (this, rest): (Value, mlua::MultiValue)| {
                let mut args = mlua::MultiValue::new();
                args.push_back(Value::String(lua.create_string(text_of(&this)?)?));
                args.extend(rest);
                f.call::<mlua::MultiValue>(args)
            })?;
            Ok(Value::Function(method))
        })?,
    )?;
    mt.set("__name", "assay.error")?;
    mt.set("__metatable", false)?;
    lua.set_named_registry_value(METATABLE, &mt)?;
    Ok(mt)
}

impl IntoLua for Failure {
    fn into_lua(self, lua: &Lua) -> mlua::Result<Value> {
        let t = lua.create_table()?;
        t.set("code", self.code)?;
        t.set("message", self.message)?;
        for (k, v) in self.details {
            let v = match v {
                serde_json::Value::Bool(b) => Value::Boolean(b),
                serde_json::Value::Number(n) => match n.as_i64() {
                    Some(i) => Value::Integer(i),
                    None => Value::Number(n.as_f64().unwrap_or_default()),
                },
                serde_json::Value::String(s) => s.into_lua(lua)?,
                serde_json::Value::Null => Value::Nil,
                other => other.to_string().into_lua(lua)?,
            };
            t.set(k, v)?;
        }
        t.set_metatable(Some(metatable(lua)?));
        Ok(Value::Table(t))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_is_a_table_with_code_message_and_details() {
        let lua = Lua::new();
        let f = Failure::new("throttled", "try again in 3 seconds").detail("retry_after", 3u64);
        lua.globals().set("err", f).unwrap();
        let checks: bool = lua
            .load(
                r#"return err.code == "throttled" and err.message == "try again in 3 seconds" and err.retry_after == 3
                    and tostring(err) == "throttled: try again in 3 seconds"
                    and ("x " .. err) == "x throttled: try again in 3 seconds"
                    and err:match("^(%w+):") == "throttled"
                    and err.field == nil
                    and getmetatable(err) == false"#,
            )
            .eval()
            .unwrap();
        assert!(checks);
        let back = Failure::from_lua_value(&lua.globals().get::<Value>("err").unwrap()).unwrap();
        assert_eq!((back.code.as_str(), back.retry_after()), ("throttled", Some(3)));
        assert!(Failure::from_lua_value(&Value::Nil).is_none());
    }
}
