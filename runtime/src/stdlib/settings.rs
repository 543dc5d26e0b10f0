//! `assay.settings`: the configuration a flow may read (no secrets). Reference:
//! `stdlib/settings.md`.

use mlua::{Lua, Table};

use crate::lua::shared;

pub fn module(lua: &Lua) -> mlua::Result<Table> {
    let shared = shared(lua)?;
    let c = &shared.config;
    let m = lua.create_table()?;
    m.set("public_url", c.public_url())?;
    m.set("issuer", c.auth.issuer.as_str())?;
    m.set("registration_enabled", c.auth.registration_enabled)?;
    m.set("session_cookie", c.session_cookie())?;
    m.set("smtp_configured", c.auth.smtp.is_some())?;
    m.set("password_min_length", c.auth.password.min_length)?;
    m.set("product_name", "assay")?;
    Ok(m)
}
