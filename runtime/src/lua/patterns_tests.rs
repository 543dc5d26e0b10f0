//! Differential tests: every case runs in a plain Lua state (the C `lstrlib`) and in one with
//! the Rust functions installed, and both must print the same results or the same error.

use std::time::{Duration, Instant};

use mlua::Lua;

use crate::lua::budget::{Budget, BUDGET_EXCEEDED};

/// Defined in both states: `S(...)` serialises a `pcall`'s results, `G(...)` collects a gmatch.
const HELPERS: &str = r##"
function S(ok, ...)
  if not ok then return "err," .. tostring((...)) end
  local out = { ok and "ok" or "err" }
  for i = 1, select("#", ...) do
    local v = select(i, ...)
    if type(v) == "string" then out[#out + 1] = string.format("%q", v)
    else out[#out + 1] = math.type(v) or tostring(v) end
    if math.type(v) then out[#out] = out[#out] .. ":" .. tostring(v) end
  end
  return table.concat(out, ",")
end
function G(s, p, init)
  local out = {}
  for a, b, c in string.gmatch(s, p, init) do
    out[#out + 1] = tostring(a) .. "/" .. tostring(b) .. "/" .. tostring(c)
  end
  return table.concat(out, "|")
end
"##;

/// Lua expressions; each is evaluated as `S(pcall(function() return <expr> end))`.
const CASES: &[&str] = &[
    // find: plain, init, negative init, specials.
    r#"string.find("hello world", "o w")"#,
    r#"string.find("hello world", "o", 6)"#,
    r#"string.find("hello world", "o", -3)"#,
    r#"string.find("hello world", "o", -100)"#,
    r#"string.find("hello world", "o", 100)"#,
    r#"string.find("hello", "", 6)"#,
    r#"string.find("hello", "", 7)"#,
    r#"string.find("hello", "", 0)"#,
    r#"string.find("a.b", ".", 1, true)"#,
    r#"string.find("a.b", ".")"#,
    r#"string.find("a+b", "+", 1, 1)"#,
    r#"string.find("abc", "b", 1.0)"#,
    r#"string.find("abc", "b", "2")"#,
    r#"string.find("abc", "b", 1.5)"#,
    r#"string.find("abc", "b", {})"#,
    r#"string.find(12345, 34)"#,
    r#"string.find("abc", nil)"#,
    r#"string.find(nil, "a")"#,
    r#"string.find("a\0b\0c", "\0c")"#,
    r#"string.find("a\0b\0c", "%z")"#,
    r#"string.find("a\0b", "[\0]")"#,
    r#"string.find("hello", "(l)(l)")"#,
    r#"string.find("hello", "()ll()")"#,
    r#"string.find("hello", "^h")"#,
    r#"string.find("hello", "^e")"#,
    r#"string.find("hello", "o$")"#,
    r#"string.find("hel$lo", "l$l")"#,
    r#"string.find("abc", "^")"#,
    r#"string.find("", "")"#,
    r#"string.find("", "^$")"#,
    r#"string.find("aaa", "a-", 2)"#,
    r#"string.find("abc", "[a-")"#,
    // match: classes and their negations, sets, quantifiers.
    r#"string.match(" \t\v\f\r\nx", "^%s*()")"#,
    r#"string.match("Hello, World 42!", "%a+")"#,
    r#"string.match("Hello, World 42!", "%A+")"#,
    r#"string.match("abc\1\127def", "%c+")"#,
    r#"string.match("abc\1\127def", "%C+")"#,
    r#"string.match("x 2024-12-04 y", "(%d+)-(%d+)-(%d+)")"#,
    r#"string.match("x 2024 y", "%D+")"#,
    r#"string.match(" \1ab~c ", "%g+")"#,
    r#"string.match("ABCdefGHI", "%l+")"#,
    r#"string.match("ABCdefGHI", "%L+")"#,
    r#"string.match("a,b;c!d", "%p")"#,
    r#"string.match("a,b;c!d", "%P+")"#,
    r#"string.match("abcDEFghi", "%u+")"#,
    r#"string.match("abcDEFghi", "%U+")"#,
    r#"string.match("__ab12__", "%w+")"#,
    r#"string.match("__ab12__", "%W+")"#,
    r#"string.match("zz0xDEADbeefqq", "%x+")"#,
    r#"string.match("zz0xDEADbeefqq", "%X+")"#,
    r#"string.match("a.b", "%.")"#,
    r#"string.match("a]b", "[%]]")"#,
    r#"string.match("a-b", "[a%-]+")"#,
    r#"string.match("a-b", "[-a]+")"#,
    r#"string.match("a-b", "[a-]+")"#,
    r#"string.match("hello", "[^aeiou]+")"#,
    r#"string.match("hello", "[^%a]")"#,
    r#"string.match("x^y", "[%^]")"#,
    r#"string.match("x^y", "[x^]+")"#,
    r#"string.match("abcxyz", "[a-cx-z]+")"#,
    r#"string.match("abc", "[]")"#,
    r#"string.match("abc", "[^]")"#,
    r#"string.match("]]]", "[]]+")"#,
    r#"string.match("abc", "[a")"#,
    r#"string.match("abc", "[a%")"#,
    r#"string.match("abc", "%")"#,
    r#"string.match("abc", "a%")"#,
    r#"string.match("aaab", "a*")"#,
    r#"string.match("aaab", "a+b")"#,
    r#"string.match("aaab", "a-b")"#,
    r#"string.match("aaab", "a?a?b")"#,
    r#"string.match("b", "a?b")"#,
    r#"string.match("<<a>>", "<(.-)>")"#,
    r#"string.match("<<a>>", "<(.*)>")"#,
    r#"string.match("  trim me  ", "^%s*(.-)%s*$")"#,
    r#"string.match("key = value", "^(%w+)%s*=%s*(%w+)$")"#,
    r#"string.match("hello", "()")"#,
    r#"string.match("hello", "()", 3)"#,
    r#"string.match("hello", "(h)(e)(l)(l)(o)")"#,
    r#"string.match("hello", "((h)(e))")"#,
    r#"string.match("hello", "(h")"#,
    r#"string.match("hello", "h)")"#,
    r#"string.match("hello", "%1")"#,
    r#"string.match("hello", "(l)%1")"#,
    r#"string.match("hello", "(l)%2")"#,
    r#"string.match("hello", "(l%1)")"#,
    r#"string.match("hello", "%0")"#,
    r#"string.match("xyzxyz", "(x(y)z)%1")"#,
    r#"string.match("xyxy", "()x%1")"#,
    r#"string.match("abab", "(ab)%1$")"#,
    r#"string.match("f(a(b)c)d", "%b()")"#,
    r#"string.match("f(a(b)c", "%b()")"#,
    r#"string.match("[[x]]", "%b[]")"#,
    r#"string.match("''a''", "%b''")"#,
    r#"string.match("abc", "%b")"#,
    r#"string.match("abc", "%b(")"#,
    r#"string.match("THE (quick) fox", "%f[%a]%a+")"#,
    r#"string.match("THE (quick) fox", "%f[%a]%a+%f[%A]", 5)"#,
    r#"string.match("hello", "%f[%z]")"#,
    r#"string.match("hello", "%f[%l]")"#,
    r#"string.match("hello", "%fx")"#,
    r#"string.match("hello", "%f[a")"#,
    r#"string.match("hello", "%g%")"#,
    r#"string.match("hello", "(()(()))")"#,
    r#"string.match(("a"):rep(40), ("(a)"):rep(33))"#,
    r#"string.match(("a"):rep(40), ("(a)"):rep(32))"#,
    r#"string.match(("a"):rep(300), ("a?"):rep(300))"#,
    r#"string.match(("a"):rep(150), ("a?"):rep(150))"#,
    r#"string.match("a", "(((((((((((((((((((((((((((((((((((a))))))))))))))))))))))))))))))))))")"#,
    r#"string.match("2024", "^%d%d%d%d$")"#,
    r#"string.match("a$b", "$b")"#,
    r#"string.match("ab", "b", -1)"#,
    r#"string.match("ab", "a", 3)"#,
    r#"string.match("ab", "$", 3)"#,
    r#"string.match("é日本", "[\128-\255]+")"#,
    r#"("method"):match("^(%l+)$")"#,
    r#"("x=1, y=2"):find("(%w+)=(%w+)", 3)"#,
    // gmatch: init, empty matches, anchors are literal.
    r#"G("hello world from lua", "%a+")"#,
    r#"G("k1=v1, k2=v2", "(%w+)=(%w+)")"#,
    r#"G("abc", "")"#,
    r#"G("abc", "()")"#,
    r#"G("abc", "a*")"#,
    r#"G("aaa bbb", "%a*")"#,
    r#"G("hello", "l", 4)"#,
    r#"G("hello", "l", -2)"#,
    r#"G("hello", ".", 10)"#,
    r#"G("^a^a", "^a")"#,
    r#"G("abc", "%")"#,
    r#"G("a,b,,c", "([^,]*)")"#,
    // gsub: strings with %0-%9 and %%, tables, functions, n.
    r#"string.gsub("hello world", "o", "0")"#,
    r#"string.gsub("hello world", "o", "0", 1)"#,
    r#"string.gsub("hello world", "o", "0", 0)"#,
    r#"string.gsub("hello world", "o", "0", -1)"#,
    r#"string.gsub("hello world", "(o)", "[%1%1]")"#,
    r#"string.gsub("hello world", "o", "[%0]")"#,
    r#"string.gsub("hello world", "o", "%1")"#,
    r#"string.gsub("hello world", "o", "%2")"#,
    r#"string.gsub("hello world", "(o)", "%2")"#,
    r#"string.gsub("hello", "l", "%%")"#,
    r#"string.gsub("hello", "l", "%")"#,
    r#"string.gsub("hello", "l", "%x")"#,
    r#"string.gsub("hello", "()l", "%1")"#,
    r#"string.gsub("hello world", "%w+", "%0 %0", 1)"#,
    r#"string.gsub("abc", "", "-")"#,
    r#"string.gsub("abc", "%w*", "-")"#,
    r#"string.gsub("abc", "b*", "-")"#,
    r#"string.gsub("  x  ", "^%s+", "")"#,
    r#"string.gsub("xxx", "^x", "y")"#,
    r#"string.gsub("hello", "", "")"#,
    r#"string.gsub("$name is $age", "%$(%w+)", { name = "ada", age = 36 })"#,
    r#"string.gsub("$name is $x", "%$(%w+)", { name = false })"#,
    r#"string.gsub("$name", "%$(%w+)", { name = {} })"#,
    r#"string.gsub("$name", "%$(%w+)", { name = 1.5 })"#,
    r#"string.gsub("abc", "%w", { a = 1, b = true })"#,
    r#"string.gsub("abc", "%w", string.upper)"#,
    r#"string.gsub("abc", "(%w)()", function(c, p) return c .. p end)"#,
    r#"string.gsub("abc", "%w", function(c) if c == "b" then return nil end return "x" end)"#,
    r#"string.gsub("abc", "%w", function() end)"#,
    r#"string.gsub("abc", "%w", function() return 7 end)"#,
    r#"string.gsub("abc", "%w", function() error("inner boom") end)"#,
    r#"string.gsub("abc", "%w", true)"#,
    // (a missing argument is reported as "got nil", not C's "got no value")
    r#"string.gsub("abc", "%w", nil)"#,
    r#"string.gsub("abc", "%w", "x", 1.5)"#,
    r#"string.gsub(12345, "3", 9)"#,
    r#"string.gsub(12345, "9", "x")"#,
    r#"string.gsub("a.b.c", "%.", "%%")"#,
    r#"string.gsub("hello world", "(o)(.)", "%2%1")"#,
    r#"string.gsub("abc", "(", "x")"#,
    r#"("a b c"):gsub(" ", "_")"#,
    r#"("hello"):gsub("l+", function(s) return #s end)"#,
    // the functions are gone or replaced, not added
    r#"string.dump"#,
];

fn run(lua: &Lua, expr: &str) -> String {
    let code = format!("return S(pcall(function() return {expr} end))");
    match lua.load(&code).set_name("=t").eval::<String>() {
        Ok(s) => s,
        Err(e) => format!("load failed: {e}"),
    }
}

/// The part of an error both implementations share: the C one has a "t:1: " position, ours
/// "runtime error: " (mlua's wording for an error raised in Rust).
fn normalise(result: &str) -> String {
    let Some(msg) = result.strip_prefix("err,") else {
        return result.to_string();
    };
    // An error raised inside a replacement function comes back through mlua with a traceback.
    let msg = msg.lines().next().unwrap_or(msg);
    let msg = msg.strip_prefix("runtime error: ").unwrap_or(msg);
    let positioned = |chunk: &str| {
        let rest = msg.strip_prefix(chunk)?;
        let (line, m) = rest.split_once(": ")?;
        line.bytes().all(|c| c.is_ascii_digit()).then_some(m)
    };
    let msg = positioned("t:").or_else(|| positioned("h:")).unwrap_or(msg);
    format!("err,{}", msg.strip_prefix("runtime error: ").unwrap_or(msg))
}

fn states() -> (Lua, Lua) {
    let c = Lua::new();
    let rust = Lua::new();
    super::super::strfns::install(&rust).unwrap();
    c.load(HELPERS).set_name("=h").exec().unwrap();
    rust.load(HELPERS).set_name("=h").exec().unwrap();
    (c, rust)
}

#[test]
fn same_results_as_lua() {
    let (c, rust) = states();
    let mut failures = Vec::new();
    for case in CASES {
        let (want, got) = (run(&c, case), run(&rust, case));
        if case.contains("dump") {
            assert!(want.starts_with("ok,function"), "{want}");
            assert_eq!(got, "ok,nil", "string.dump is still there");
            continue;
        }
        if normalise(&want) != normalise(&got) {
            failures.push(format!("{case}\n   lua:  {want}\n   rust: {got}"));
        }
    }
    assert!(failures.is_empty(), "{} case(s) differ:\n{}", failures.len(), failures.join("\n"));
}

/// Random subjects and patterns from a small alphabet, so that many of them match and many
/// are malformed: both implementations must agree on every one.
#[test]
fn same_results_on_generated_cases() {
    let (c, rust) = states();
    let subjects = ["", "a", "ab(c)d", "aaa bbb", "x=1, y=22", "((a)(b))", "%a-b]", "  pad  "];
    let atoms = [
        "a", "b", ".", "%a", "%s", "%d", "[ab]", "[^a]", "(", ")", "()", "%1", "%b()", "%f[%w]", "$", "^", "-", "*", "+", "?", "%", "[",
        "]", " ",
    ];
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move |n: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % n as u64) as usize
    };
    let mut failures = Vec::new();
    for _ in 0..3000 {
        let len = 1 + next(5);
        let pat: String = (0..len).map(|_| atoms[next(atoms.len())]).collect();
        let subject = subjects[next(subjects.len())];
        let call = match next(4) {
            0 => format!("string.find({subject:?}, {pat:?})"),
            1 => format!("string.match({subject:?}, {pat:?})"),
            2 => format!("G({subject:?}, {pat:?})"),
            _ => format!("string.gsub({subject:?}, {pat:?}, \"<%0>\")"),
        };
        let (want, got) = (run(&c, &call), run(&rust, &call));
        if normalise(&want) != normalise(&got) {
            failures.push(format!("{call}\n   lua:  {want}\n   rust: {got}"));
        }
    }
    assert!(failures.is_empty(), "{} case(s) differ:\n{}", failures.len(), failures.join("\n"));
}

/// A state with the Rust functions and a budget that ends `after` from now.
fn budgeted(after: Duration) -> Lua {
    let lua = Lua::new();
    super::super::strfns::install(&lua).unwrap();
    lua.set_app_data(Budget { deadline: Some(Instant::now() + after), ..Default::default() });
    lua
}

fn stopped_by_budget(lua: &Lua, code: &str) -> Duration {
    let started = Instant::now();
    let err = lua.load(code).exec().expect_err("the budget should have stopped it");
    let took = started.elapsed();
    assert!(err.to_string().contains(BUDGET_EXCEEDED), "{err}");
    assert!(lua.app_data_ref::<Budget>().unwrap().exceeded.load(std::sync::atomic::Ordering::Relaxed));
    took
}

#[test]
fn the_budget_stops_a_quadratic_trim() {
    let lua = budgeted(Duration::from_millis(100));
    let took = stopped_by_budget(&lua, r#"local s = "x" .. (" "):rep(40000) .. "y"; return s:match("^%s*(.-)%s*$")"#);
    assert!(took < Duration::from_secs(1), "took {took:?}");
}

#[test]
fn the_budget_stops_a_catastrophic_pattern() {
    for code in [
        r#"return (("a"):rep(5000)):match(("(.-)"):rep(8) .. "x")"#,
        r#"return (("a"):rep(40000) .. "b"):find(("a-"):rep(6) .. "c")"#,
        r#"return (("a"):rep(5000)):gsub(("(.-)"):rep(8) .. "x", "")"#,
        r#"for _ in (("a"):rep(5000)):gmatch(("(.-)"):rep(8) .. "x") do end"#,
    ] {
        let lua = budgeted(Duration::from_millis(100));
        let took = stopped_by_budget(&lua, code);
        assert!(took < Duration::from_secs(1), "{code} took {took:?}");
    }
}

/// A `pcall` in plain Lua catches the error, but the budget stays spent: the next check fails.
#[test]
fn a_spent_budget_keeps_failing() {
    let lua = budgeted(Duration::from_millis(50));
    let code = r#"
      local ok = pcall(string.match, ("a"):rep(5000), ("(.-)"):rep(8) .. "x")
      assert(not ok)
      return ("a"):rep(100000):match(".-b")
    "#;
    stopped_by_budget(&lua, code);
}

/// No budget armed (an operator script): the same functions just run.
#[test]
fn no_budget_no_limit() {
    let lua = Lua::new();
    super::super::strfns::install(&lua).unwrap();
    let n: i64 = lua.load(r#"return #(("ab"):rep(20000):match("^(.-)%s*$"))"#).eval().unwrap();
    assert_eq!(n, 40000);
    lua.set_app_data(Budget { deadline: None, ..Default::default() });
    let n: i64 = lua.load(r#"return #(("ab"):rep(20000):match("^(.-)%s*$"))"#).eval().unwrap();
    assert_eq!(n, 40000);
}

/// A call that runs long leaves its worker and resumes where it was: each match is replaced
/// once, each capture found once, on a tokio worker as without one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_calls_resume_off_the_worker() {
    let code = r#"
      local calls = 0
      local s = ("ab "):rep(60000)
      local out, n = s:gsub("%a+", function(w) calls = calls + 1 return w:upper() end)
      assert(n == 60000 and calls == 60000, n .. " " .. calls)
      assert(out == ("AB "):rep(60000))
      local words = 0
      for _ in s:gmatch("%a+") do words = words + 1 end
      assert(words == 60000)
      assert(s:find("x") == nil and s:find("ab", -3) == #s - 2)
      assert(#(("x" .. (" "):rep(3000) .. "y"):match("^%s*(.-)%s*$")) == 3002)
      return true
    "#;
    for with_runtime in [true, false] {
        let lua = Lua::new();
        super::super::strfns::install(&lua).unwrap();
        let ok: bool = if with_runtime {
            lua.load(code).eval().unwrap()
        } else {
            std::thread::spawn(move || lua.load(code).eval::<bool>().unwrap()).join().unwrap()
        };
        assert!(ok);
    }
}

/// Per-call cost of the C functions and of ours on typical flow calls. Run it optimised:
/// `CARGO_PROFILE_DEV_OPT_LEVEL=2 cargo test --lib patterns::tests::cost -- --ignored --nocapture`.
#[test]
#[ignore]
fn cost() {
    let calls = [
        r#"("  alice@example.com "):match("^%s*(.-)%s*$")"#,
        r#"("alice@example.com"):find("@", 1, true)"#,
        r#"("alice@example.com"):match("^[^@]+@[^@]+%.[^@]+$")"#,
        r#"("/auth/users/abc123"):match("^/auth/users/([%w_-]+)$")"#,
        r#"("a b&c=d"):gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", string.byte(c)) end)"#,
        r#"("x-forwarded-for"):gsub("%-", "_")"#,
    ];
    let (c, rust) = states();
    // The floor: any Rust function with these arguments and results, through mlua.
    let floor = |lua: &Lua| {
        let f = lua.create_function(|_, _: (mlua::Value, mlua::Value, mlua::Value, mlua::Value)| {
            let mut out = mlua::MultiValue::new();
            out.push_back(mlua::Value::Integer(6));
            out.push_back(mlua::Value::Integer(6));
            Ok(out)
        });
        lua.globals().set("floor", f.unwrap()).unwrap();
    };
    floor(&c);
    floor(&rust);
    for call in [r#"floor("alice@example.com", "@", 1, true)"#].into_iter().chain(calls) {
        let code = format!("local t = os.clock() for _ = 1, 200000 do local _ = {call} end return (os.clock() - t) / 200000 * 1e9");
        let want: f64 = c.load(&code).eval().unwrap();
        let got: f64 = rust.load(&code).eval().unwrap();
        eprintln!("{:>6.0} ns (C) {:>6.0} ns (Rust)  {call}", want, got);
    }
}
