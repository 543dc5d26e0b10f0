//! `assay.throttle`: the brute-force counters, to inspect and clear. Reference:
//! `stdlib/throttle.md`.

use mlua::{Lua, Table};

use super::{identity, opt_string, outcome, outcome_lua, page_limit};
use crate::lua::{Outcome, Phase};

const PHASES: &[Phase] = &[Phase::Request];
/// The longest window `throttle.hit` takes: a year (366 days).
const MAX_WINDOW_SECS: u64 = 366 * 24 * 3600;

pub fn module(lua: &Lua) -> mlua::Result<Table> {
    let m = lua.create_table()?;
    m.set(
        "list",
        lua.create_async_function(|lua, opts: Option<Table>| async move {
            let id = identity(&lua, "throttle.list", crate::lua::READ_PHASES)?;
            let limit = page_limit("throttle.list", opts.as_ref())?;
            let cursor = opt_string(opts.as_ref(), "cursor")?;
            outcome_lua(&lua, id.throttle.list(limit, cursor.as_deref()).await)
        })?,
    )?;
    m.set(
        "clear",
        lua.create_async_function(|lua, key: String| async move {
            let id = identity(&lua, "throttle.clear", PHASES)?;
            match id.throttle.clear(&key).await {
                Ok(true) => Ok(Outcome::Ok(true)),
                Ok(false) => Ok(Outcome::Fail(crate::lua::Failure::new("not_found", format!("no counter for {key:?}")))),
                Err(e) => outcome(Err(e)),
            }
        })?,
    )?;
    m.set(
        "hit",
        lua.create_async_function(|lua, (key, limit, window_secs): (String, u32, u64)| async move {
            let id = identity(&lua, "throttle.hit", PHASES)?;
            if key.is_empty() {
                return Err(mlua::Error::runtime("throttle.hit: the key must not be empty"));
            }
            if limit == 0 || !(1..=MAX_WINDOW_SECS).contains(&window_secs) {
                return Err(mlua::Error::runtime("throttle.hit: limit must be positive and window_secs 1 to 31622400 (a year)"));
            }
            match id.throttle.hit(&key, limit, window_secs).await {
                Ok(None) => Ok(Outcome::Ok(true)),
                Err(e @ crate::identity::IdentityError::Invalid { .. }) => Ok(Outcome::Fail(super::failure(&e))),
                Ok(Some(wait)) => Ok(Outcome::Fail(
                    crate::lua::Failure::new("throttled", format!("too many attempts, try again in {wait} seconds"))
                        .detail("retry_after", wait),
                )),
                Err(e) => outcome(Err(e)),
            }
        })?,
    )?;
    Ok(m)
}
