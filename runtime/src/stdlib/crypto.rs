//! `assay.crypto`: random tokens, SHA-256, HMAC-SHA-256, constant-time comparison, base64url.
//! Reference: `stdlib/crypto.md`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use mlua::{Lua, Table};
use sha2::{Digest, Sha256};

use crate::crypto::{constant_time_eq, random_token};
use crate::lua::{fail, Outcome};

pub fn module(lua: &Lua) -> mlua::Result<Table> {
    let m = lua.create_table()?;
    m.set(
        "random_token",
        lua.create_function(|_, bytes: Option<usize>| {
            let n = bytes.unwrap_or(32);
            if !(16..=1024).contains(&n) {
                return Err(mlua::Error::runtime(format!("crypto.random_token: {n} bytes is outside 16..1024")));
            }
            Ok(random_token(n))
        })?,
    )?;
    m.set(
        "sha256",
        lua.create_function(|lua, (data, enc): (mlua::String, Option<String>)| {
            encode(lua, &Sha256::digest(data.as_bytes()), enc.as_deref())
        })?,
    )?;
    m.set(
        "hmac_sha256",
        lua.create_function(|lua, (key, data, enc): (mlua::String, mlua::String, Option<String>)| {
            let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&key.as_bytes()).map_err(mlua::Error::external)?;
            mac.update(&data.as_bytes());
            encode(lua, &mac.finalize().into_bytes(), enc.as_deref())
        })?,
    )?;
    m.set(
        "constant_time_eq",
        lua.create_function(|_, (a, b): (mlua::String, mlua::String)| Ok(constant_time_eq(&a.as_bytes(), &b.as_bytes())))?,
    )?;
    m.set("base64url_encode", lua.create_function(|_, data: mlua::String| Ok(URL_SAFE_NO_PAD.encode(data.as_bytes())))?)?;
    m.set(
        "base64url_decode",
        lua.create_function(|lua, text: mlua::String| {
            let bytes = text.as_bytes();
            let end = bytes.iter().rposition(|b| *b != b'=').map_or(0, |i| i + 1);
            match URL_SAFE_NO_PAD.decode(&bytes[..end]) {
                Ok(bytes) => Ok(Outcome::Ok(lua.create_string(&bytes)?)),
                Err(e) => fail("bad_encoding", e),
            }
        })?,
    )?;
    Ok(m)
}

fn encode(lua: &Lua, digest: &[u8], enc: Option<&str>) -> mlua::Result<mlua::String> {
    match enc.unwrap_or("hex") {
        "hex" => lua.create_string(hex::encode(digest)),
        "base64url" => lua.create_string(URL_SAFE_NO_PAD.encode(digest)),
        "raw" => lua.create_string(digest),
        other => Err(mlua::Error::runtime(format!("crypto: unknown encoding {other:?} (hex, base64url or raw)"))),
    }
}
