//! `string.find`, `string.match`, `string.gmatch` and `string.gsub` over the Rust matcher in
//! [`super::patterns`], installed in the state's real string table (so `s:match(p)` through
//! the string metatable gets them too), with Lua 5.4's argument handling (`str_find_aux`,
//! `gmatch`, `str_gsub`). One difference: an error is an mlua runtime error, like every
//! other error raised by Rust code in the sandbox, so its text has no "file:line:" prefix.
//!
//! The same step also removes `string.dump`: bytecode of a flow's functions is nothing a flow
//! needs, and loading bytecode is the classic way out of a Lua sandbox.

use mlua::{Function, Lua, MultiValue, Table, Value};

use super::patterns::{find_plain, no_specials, resumable, Capture, Matcher, Res};

pub fn install(lua: &Lua) -> mlua::Result<()> {
    let string: Table = lua.globals().raw_get("string")?;
    string.raw_set(
        "find",
        lua.create_function(|lua, (s, p, init, plain): (Value, Value, Value, Value)| find_aux(lua, s, p, init, plain, true))?,
    )?;
    string
        .raw_set("match", lua.create_function(|lua, (s, p, init): (Value, Value, Value)| find_aux(lua, s, p, init, Value::Nil, false))?)?;
    string.raw_set("gmatch", lua.create_function(gmatch)?)?;
    string.raw_set("gsub", lua.create_function(gsub)?)?;
    string.raw_set("dump", Value::Nil)?;
    Ok(())
}

/// `luaL_typename`.
fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Nil => "nil",
        Value::Boolean(_) => "boolean",
        Value::Integer(_) | Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Table(_) => "table",
        Value::Function(_) => "function",
        Value::Thread(_) => "thread",
        _ => "userdata",
    }
}

fn bad_arg(arg: usize, fname: &str, msg: &str) -> mlua::Error {
    mlua::Error::RuntimeError(format!("bad argument #{arg} to '{fname}' ({msg})"))
}

/// `luaL_checklstring`: a string, or a number turned into one.
fn check_string(lua: &Lua, v: Value, arg: usize, fname: &str) -> Res<mlua::String> {
    match v {
        Value::String(s) => Ok(s),
        Value::Integer(_) | Value::Number(_) => lua.coerce_string(v)?.ok_or_else(|| bad_arg(arg, fname, "string expected, got number")),
        other => Err(bad_arg(arg, fname, &format!("string expected, got {}", type_name(&other)))),
    }
}

/// `luaL_optinteger`.
fn opt_integer(lua: &Lua, v: Value, arg: usize, fname: &str, default: i64) -> Res<i64> {
    match v {
        Value::Nil => Ok(default),
        Value::Integer(i) => Ok(i),
        other => {
            let name = type_name(&other);
            if let Some(i) = lua.coerce_integer(other.clone())? {
                return Ok(i);
            }
            if lua.coerce_number(other)?.is_some() {
                return Err(bad_arg(arg, fname, "number has no integer representation"));
            }
            Err(bad_arg(arg, fname, &format!("number expected, got {name}")))
        }
    }
}

/// `posrelatI`: a 1-based start position from a possibly negative one.
fn posrelat(pos: i64, len: usize) -> usize {
    if pos > 0 {
        pos as usize
    } else if pos == 0 || pos < -(len as i64) {
        1
    } else {
        (len as i64 + pos + 1) as usize
    }
}

fn capture_value(lua: &Lua, m: &Matcher, i: usize, s: usize, e: usize) -> Res<Value> {
    Ok(match m.capture(i, s, e)? {
        Capture::Slice(a, b) => Value::String(lua.create_string(&m.src[a..b])?),
        Capture::Position(n) => Value::Integer(n as i64),
    })
}

/// `push_captures`: onto `out`; `whole` is the match, or `None` for `find`'s extra values.
fn push_captures(lua: &Lua, m: &Matcher, whole: Option<(usize, usize)>, out: &mut MultiValue) -> Res<()> {
    let (s, e) = whole.unwrap_or((0, 0));
    for i in 0..m.capture_count(whole.is_some()) {
        out.push_back(capture_value(lua, m, i, s, e)?);
    }
    Ok(())
}

fn find_aux(lua: &Lua, s: Value, p: Value, init: Value, plain: Value, find: bool) -> Res<MultiValue> {
    let fname = if find { "find" } else { "match" };
    let s = check_string(lua, s, 1, fname)?;
    let p = check_string(lua, p, 2, fname)?;
    let init = opt_integer(lua, init, 3, fname, 1)?;
    let (sb, pb) = (s.as_bytes(), p.as_bytes());
    let mut out = MultiValue::new();
    let init = posrelat(init, sb.len()) - 1;
    if init > sb.len() {
        out.push_back(Value::Nil);
        return Ok(out);
    }
    if find && (!matches!(plain, Value::Nil | Value::Boolean(false)) || no_specials(&pb)) {
        let mut m = Matcher::new(Some(lua), &sb, &[]);
        match resumable(&mut m, |m| find_plain(m, init, &pb))? {
            Some(at) => {
                out.push_back(Value::Integer(at as i64 + 1));
                out.push_back(Value::Integer((at + pb.len()) as i64));
            }
            None => out.push_back(Value::Nil),
        }
        return Ok(out);
    }
    let anchor = pb.first() == Some(&b'^');
    let pat = if anchor { &pb[1..] } else { &pb[..] };
    let mut m = Matcher::new(Some(lua), &sb, pat);
    let mut s1 = init;
    let found = resumable(&mut m, |m| loop {
        m.reset();
        if let Some(e) = m.do_match(s1, 0)? {
            return Ok(Some(e));
        }
        if anchor || s1 >= sb.len() {
            return Ok(None);
        }
        s1 += 1;
    })?;
    match found {
        Some(e) if find => {
            out.push_back(Value::Integer(s1 as i64 + 1));
            out.push_back(Value::Integer(e as i64));
            push_captures(lua, &m, None, &mut out)?;
        }
        Some(e) => push_captures(lua, &m, Some((s1, e)), &mut out)?,
        None => out.push_back(Value::Nil),
    }
    Ok(out)
}

/// `gmatch(s, p [, init])`: an iterator over the matches; `^` is not an anchor here, and an
/// empty match right where the previous one ended is skipped (Lua 5.4's `lastmatch`).
fn gmatch(lua: &Lua, (s, p, init): (Value, Value, Value)) -> Res<Function> {
    let s = check_string(lua, s, 1, "gmatch")?;
    let p = check_string(lua, p, 2, "gmatch")?;
    let init = opt_integer(lua, init, 3, "gmatch", 1)?;
    let len = s.as_bytes().len();
    let mut src = (posrelat(init, len) - 1).min(len + 1);
    let mut last: Option<usize> = None;
    lua.create_function_mut(move |lua, ()| {
        let (sb, pb) = (s.as_bytes(), p.as_bytes());
        let mut m = Matcher::new(Some(lua), &sb, &pb);
        let mut out = MultiValue::new();
        let mut at = src;
        let found = resumable(&mut m, |m| {
            while at <= m.src.len() {
                m.reset();
                match m.do_match(at, 0)? {
                    Some(e) if Some(e) != last => return Ok(Some(e)),
                    _ => at += 1,
                }
            }
            Ok(None)
        })?;
        if let Some(e) = found {
            src = e;
            last = Some(e);
            push_captures(lua, &m, Some((at, e)), &mut out)?;
        }
        Ok(out)
    })
}

enum Repl {
    Str(mlua::String),
    Table(Table),
    Func(Function),
}

fn gsub(lua: &Lua, (s, p, repl, max): (Value, Value, Value, Value)) -> Res<(Value, i64)> {
    let s = check_string(lua, s, 1, "gsub")?;
    let p = check_string(lua, p, 2, "gsub")?;
    let (sb, pb) = (s.as_bytes(), p.as_bytes());
    let max = opt_integer(lua, max, 4, "gsub", sb.len() as i64 + 1)?;
    let repl = match repl {
        Value::String(r) => Repl::Str(r),
        v @ (Value::Integer(_) | Value::Number(_)) => Repl::Str(check_string(lua, v, 3, "gsub")?),
        Value::Table(t) => Repl::Table(t),
        Value::Function(f) => Repl::Func(f),
        other => return Err(bad_arg(3, "gsub", &format!("string/function/table expected, got {}", type_name(&other)))),
    };
    let anchor = pb.first() == Some(&b'^');
    let pat = if anchor { &pb[1..] } else { &pb[..] };
    let mut m = Matcher::new(Some(lua), &sb, pat);
    // The result is built only once something matched: `copied` is how much of the subject
    // is already in `buf`, so unmatched text is copied in runs, not byte by byte.
    let mut buf: Vec<u8> = Vec::new();
    let (mut src, mut copied, mut n, mut changed) = (0usize, 0usize, 0i64, false);
    let mut last: Option<usize> = None;
    resumable(&mut m, |m| {
        while n < max {
            m.reset();
            match m.do_match(src, 0)? {
                Some(e) if Some(e) != last => {
                    n += 1;
                    buf.extend_from_slice(&sb[copied..src]);
                    changed |= add_value(lua, m, &mut buf, src, e, &repl)?;
                    src = e;
                    copied = e;
                    last = Some(e);
                }
                _ if src < sb.len() => src += 1,
                _ => break,
            }
            if anchor {
                break;
            }
        }
        Ok(())
    })?;
    if !changed {
        // The subject itself (as a string even when it was a number, as in C).
        return Ok((Value::String(s.clone()), n));
    }
    buf.extend_from_slice(&sb[copied..]);
    Ok((Value::String(lua.create_string(&buf)?), n))
}

/// `add_value`: appends the replacement of the match `s..e`; false when the original was kept.
fn add_value(lua: &Lua, m: &Matcher, buf: &mut Vec<u8>, s: usize, e: usize, repl: &Repl) -> Res<bool> {
    let value = match repl {
        Repl::Str(r) => {
            add_string(m, buf, s, e, &r.as_bytes())?;
            return Ok(true);
        }
        Repl::Table(t) => t.get::<Value>(capture_value(lua, m, 0, s, e)?)?,
        Repl::Func(f) => {
            let mut args = MultiValue::new();
            push_captures(lua, m, Some((s, e)), &mut args)?;
            f.call::<Value>(args)?
        }
    };
    match value {
        Value::Nil | Value::Boolean(false) => {
            buf.extend_from_slice(&m.src[s..e]);
            Ok(false)
        }
        Value::String(v) => {
            buf.extend_from_slice(&v.as_bytes());
            Ok(true)
        }
        v @ (Value::Integer(_) | Value::Number(_)) => {
            if let Some(text) = lua.coerce_string(v)? {
                buf.extend_from_slice(&text.as_bytes());
            }
            Ok(true)
        }
        other => Err(mlua::Error::RuntimeError(format!("invalid replacement value (a {})", type_name(&other)))),
    }
}

/// `add_s`: a replacement string with `%0`..`%9` and `%%`.
fn add_string(m: &Matcher, buf: &mut Vec<u8>, s: usize, e: usize, r: &[u8]) -> Res<()> {
    let mut rest = r;
    while let Some(at) = rest.iter().position(|&c| c == b'%') {
        buf.extend_from_slice(&rest[..at]);
        let c = rest.get(at + 1).copied().unwrap_or(0);
        match c {
            b'%' => buf.push(b'%'),
            b'0' => buf.extend_from_slice(&m.src[s..e]),
            b'1'..=b'9' => match m.capture((c - b'1') as usize, s, e)? {
                Capture::Slice(a, b) => buf.extend_from_slice(&m.src[a..b]),
                Capture::Position(n) => buf.extend_from_slice(n.to_string().as_bytes()),
            },
            _ => return Err(mlua::Error::RuntimeError("invalid use of '%' in replacement string".into())),
        }
        rest = rest.get(at + 2..).unwrap_or(&[]);
    }
    buf.extend_from_slice(rest);
    Ok(())
}
