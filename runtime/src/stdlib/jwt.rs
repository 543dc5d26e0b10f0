//! `assay.jwt`: sign claims with the provider's active key, verify tokens against the published
//! keys. Lua passes claims and gets tokens; keys stay in Rust. Reference: `stdlib/jwt.md`.

use mlua::{Lua, Table, Value};

use super::{identity, opt_string, outcome, outcome_lua};
use crate::lua::Phase;
use crate::oidc::jwt::Expect;

const PHASES: &[Phase] = &[Phase::Request];

pub fn module(lua: &Lua) -> mlua::Result<Table> {
    let m = lua.create_table()?;
    m.set(
        "sign",
        lua.create_async_function(|lua, (claims, opts): (Value, Option<Table>)| async move {
            let id = identity(&lua, "jwt.sign", PHASES)?;
            let claims = super::json::to_json(&lua, claims).map_err(|e| mlua::Error::runtime(format!("jwt.sign: claims: {e}")))?;
            if !claims.is_object() {
                return Err(mlua::Error::runtime("jwt.sign: claims must be a table with string keys"));
            }
            let alg = opt_string(opts.as_ref(), "alg")?.unwrap_or_else(|| crate::oidc::keys::DEFAULT_ALG.to_string());
            let typ = opt_string(opts.as_ref(), "typ")?;
            outcome(id.signing.sign(&alg, typ.as_deref(), &claims).await)
        })?,
    )?;
    m.set(
        "verify",
        lua.create_async_function(|lua, (token, opts): (String, Option<Table>)| async move {
            let id = identity(&lua, "jwt.verify", crate::lua::READ_PHASES)?;
            let expect = Expect {
                issuer: opt_string(opts.as_ref(), "issuer")?,
                audience: opt_string(opts.as_ref(), "audience")?,
                typ: opt_string(opts.as_ref(), "typ")?,
                allow_expired: false,
            };
            outcome_lua(&lua, id.signing.verify(&token, &expect).await)
        })?,
    )?;
    Ok(m)
}
