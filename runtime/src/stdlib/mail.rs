//! `assay.mail`: send a message through `[auth.smtp]` (or to the log when none is configured).
//! Reference: `stdlib/mail.md`.

use mlua::{Lua, Table};

use super::{identity, outcome};
use crate::identity::mail::Mail;
use crate::lua::Phase;

pub fn module(lua: &Lua) -> mlua::Result<Table> {
    let m = lua.create_table()?;
    m.set(
        "send",
        lua.create_async_function(|lua, t: Table| async move {
            let id = identity(&lua, "mail.send", &[Phase::Request])?;
            let need = |k: &str| -> mlua::Result<String> {
                t.get::<Option<String>>(k)?.ok_or_else(|| mlua::Error::runtime(format!("mail.send: {k} is required")))
            };
            let mail = Mail { to: need("to")?, subject: need("subject")?, text: need("text")?, html: t.get("html")? };
            outcome(id.mailer.send(&mail).await.map(|_| true))
        })?,
    )?;
    // Sends after the response: the answer's timing then says nothing about whether a mail
    // went out (recovery must not reveal which addresses have accounts). Failures are logged.
    m.set(
        "queue",
        lua.create_function(|lua, t: Table| {
            let id = identity(lua, "mail.queue", &[Phase::Request])?;
            let need = |k: &str| -> mlua::Result<String> {
                t.get::<Option<String>>(k)?.ok_or_else(|| mlua::Error::runtime(format!("mail.queue: {k} is required")))
            };
            let mail = Mail { to: need("to")?, subject: need("subject")?, text: need("text")?, html: t.get("html")? };
            if let Err(e) = mail.to.parse::<lettre::message::Mailbox>() {
                return outcome(Err(crate::identity::IdentityError::invalid("to", format!("{:?}: {e}", mail.to))));
            }
            tokio::spawn(async move {
                if let Err(e) = id.mailer.send(&mail).await {
                    tracing::error!(to = %mail.to, error = %e, "queued mail was not sent");
                }
            });
            Ok(crate::lua::Outcome::Ok(true))
        })?,
    )?;
    Ok(m)
}
