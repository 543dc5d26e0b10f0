//! `assay.mail`: send a message through `[auth.smtp]` (or to the log when none is configured).
//! Reference: `stdlib/mail.md`.

use mlua::{Lua, Table};

use super::{identity, outcome};
use crate::identity::mail::Mail;
use crate::lua::Phase;

pub fn module(lua: &Lua) -> mlua::Result<Table> {
    let m = lua.create_table()?;
    m.set("send", lua.create_async_function(|lua, t: Table| async move {
        let id = identity(&lua, "mail.send", &[Phase::Request])?;
        let need = |k: &str| -> mlua::Result<String> {
            t.get::<Option<String>>(k)?.ok_or_else(|| mlua::Error::runtime(format!("mail.send: {k} is required")))
        };
        let mail = Mail { to: need("to")?, subject: need("subject")?, text: need("text")?, html: t.get("html")? };
        outcome(id.mailer.send(&mail).await.map(|_| true))
    })?)?;
    Ok(m)
}
