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
    let bf = &c.auth.brute_force;
    let limits = lua.create_table()?;
    limits.set("recovery_per_ip", bf.recovery_per_ip)?;
    limits.set("mails_per_address", bf.mails_per_address)?;
    limits.set("registration_per_ip", bf.registration_per_ip)?;
    limits.set("window_secs", 3600)?;
    m.set("rate_limits", crate::lua::sandbox::read_only(lua, limits, "settings.rate_limits")?)?;
    m.set("product_name", "assay")?;
    Ok(m)
}
