//! `assay.throttle`: the brute-force counters, to inspect and clear. Reference:
//! `stdlib/throttle.md`.

use mlua::{Lua, Table};

use super::{identity, opt_string, outcome, outcome_lua, page_limit};
use crate::identity::throttle;
use crate::lua::{Outcome, Phase};

const PHASES: &[Phase] = &[Phase::Request];

pub fn module(lua: &Lua) -> mlua::Result<Table> {
    let m = lua.create_table()?;
    m.set("list", lua.create_async_function(|lua, opts: Option<Table>| async move {
        let id = identity(&lua, "throttle.list", PHASES)?;
        let limit = page_limit("throttle.list", opts.as_ref())?;
        let cursor = opt_string(opts.as_ref(), "cursor")?;
        outcome_lua(&lua, throttle::list(&id, limit, cursor.as_deref()).await)
    })?)?;
    m.set("clear", lua.create_async_function(|lua, key: String| async move {
        let id = identity(&lua, "throttle.clear", PHASES)?;
        match throttle::clear(&id, &key).await {
            Ok(true) => Ok(Outcome::Ok(true)),
            Ok(false) => Ok(Outcome::Fail(format!("not_found: no counter for {key:?}"))),
            Err(e) => outcome(Err(e)),
        }
    })?)?;
    m.set("hit", lua.create_async_function(|lua, (key, limit, window_secs): (String, u32, u64)| async move {
        let id = identity(&lua, "throttle.hit", PHASES)?;
        if key.is_empty() || key.len() > 300 {
            return Err(mlua::Error::runtime("throttle.hit: the key must be 1 to 300 bytes"));
        }
        if limit == 0 || window_secs == 0 {
            return Err(mlua::Error::runtime("throttle.hit: limit and window_secs must be positive"));
        }
        match throttle::hit(&id, &key, limit, window_secs).await {
            Ok(None) => Ok(Outcome::Ok(true)),
            Ok(Some(wait)) => Ok(Outcome::Fail(format!("throttled: too many attempts, try again in {wait} seconds"))),
            Err(e) => outcome(Err(e)),
        }
    })?)?;
    Ok(m)
}
