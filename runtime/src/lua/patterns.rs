//! Lua 5.4's pattern matcher (`lstrlib.c`: `match`, `classEnd`, `matchbracketclass`, ...)
//! ported to Rust, so that the flow budget can stop it.
//!
//! Why: the instruction hook that enforces the budget never fires inside a C function, and a
//! pattern such as `("(.-)"):rep(8) .. "x"` (or a `trim` on a long run of spaces) can keep
//! `string.match` busy for minutes. This port counts its steps and, every [`CHECK_EVERY`] of
//! them, asks the running flow's [`Budget`](super::budget::Budget) whether time is up.
//! Everything else (the order in which alternatives are tried, the recursion limit, the error
//! messages) follows the C code line by line, so flows see the same results; the differential
//! tests in `patterns_tests.rs` compare the two on a large table of cases.

use mlua::Lua;

pub const MAXCAPTURES: usize = 32;
/// The C matcher's `MAXCCALLS`: deeper recursion is "pattern too complex".
const MAXCCALLS: usize = 200;
/// Steps between two looks at the clock: a look costs one `Instant::now()`, the steps between
/// take a few microseconds, so a spent budget is noticed promptly and cheaply.
const CHECK_EVERY: usize = 4096;
/// Steps a call may take on its tokio worker before it is moved off it (see [`resumable`]).
const INLINE_STEPS: usize = 16 * CHECK_EVERY;
const CAP_UNFINISHED: isize = -1;
const CAP_POSITION: isize = -2;
const SPECIALS: &[u8] = b"^$*+?.([%-";

pub type Res<T> = Result<T, mlua::Error>;

fn fail<T>(msg: impl Into<String>) -> Res<T> {
    Err(mlua::Error::RuntimeError(msg.into()))
}

/// One capture's value: a slice of the subject, or a position (`()`, 1-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capture {
    Slice(usize, usize),
    Position(usize),
}

/// The C `MatchState`, with indices in place of pointers and a step counter.
pub struct Matcher<'a> {
    pub src: &'a [u8],
    pat: &'a [u8],
    pub level: usize,
    depth: usize,
    caps: [(usize, isize); MAXCAPTURES],
    steps: usize,
    /// Steps before the last check, and the count past which the call leaves its worker.
    total: usize,
    inline_limit: usize,
    /// Where the budget lives; `None` runs unchecked (unit tests of the matcher alone).
    lua: Option<&'a Lua>,
}

impl<'a> Matcher<'a> {
    pub fn new(lua: Option<&'a Lua>, src: &'a [u8], pat: &'a [u8]) -> Matcher<'a> {
        Matcher { src, pat, level: 0, depth: MAXCCALLS, caps: [(0, 0); MAXCAPTURES], steps: 0, total: 0, inline_limit: INLINE_STEPS, lua }
    }

    /// `reprepstate`: before each attempt. The step count carries on: it is per call.
    #[inline]
    pub fn reset(&mut self) {
        self.level = 0;
        self.depth = MAXCCALLS;
    }

    /// Counts `n` steps and, every [`CHECK_EVERY`], checks the budget.
    #[inline]
    pub fn tick(&mut self, n: usize) -> Res<()> {
        self.steps += n;
        if self.steps < CHECK_EVERY {
            return Ok(());
        }
        self.total += self.steps;
        self.steps = 0;
        if let Some(lua) = self.lua {
            super::budget::check_budget(lua)?;
        }
        if self.total >= self.inline_limit {
            return Err(mlua::Error::external(GaveUp));
        }
        Ok(())
    }

    /// The pattern byte at `p`, or 0 past its end (C reads the string's terminating NUL).
    #[inline]
    fn pc(&self, p: usize) -> u8 {
        self.pat.get(p).copied().unwrap_or(0)
    }

    #[inline]
    fn sc(&self, s: usize) -> u8 {
        self.src.get(s).copied().unwrap_or(0)
    }

    /// `match`: where a match of `pat[p..]` starting at `src[s]` ends, if there is one.
    pub fn do_match(&mut self, s: usize, p: usize) -> Res<Option<usize>> {
        if self.depth == 0 {
            return fail("pattern too complex");
        }
        self.depth -= 1;
        self.tick(1)?;
        let r = self.match_here(s, p);
        self.depth += 1;
        r
    }

    fn match_here(&mut self, mut s: usize, mut p: usize) -> Res<Option<usize>> {
        loop {
            if p == self.pat.len() {
                return Ok(Some(s));
            }
            match self.pat[p] {
                b'(' if self.pc(p + 1) == b')' => return self.start_capture(s, p + 2, CAP_POSITION),
                b'(' => return self.start_capture(s, p + 1, CAP_UNFINISHED),
                b')' => return self.end_capture(s, p + 1),
                b'$' if p + 1 == self.pat.len() => return Ok((s == self.src.len()).then_some(s)),
                b'%' if self.pc(p + 1) == b'b' => match self.match_balance(s, p + 2)? {
                    Some(next) => {
                        s = next;
                        p += 4;
                    }
                    None => return Ok(None),
                },
                b'%' if self.pc(p + 1) == b'f' => {
                    p += 2;
                    if self.pc(p) != b'[' {
                        return fail("missing '[' after '%f' in pattern");
                    }
                    let ep = self.class_end(p)?;
                    let previous = if s == 0 { 0 } else { self.src[s - 1] };
                    if self.match_bracket(previous, p, ep - 1) || !self.match_bracket(self.sc(s), p, ep - 1) {
                        return Ok(None);
                    }
                    p = ep;
                }
                b'%' if self.pc(p + 1).is_ascii_digit() => match self.match_capture(s, self.pc(p + 1))? {
                    Some(next) => {
                        s = next;
                        p += 2;
                    }
                    None => return Ok(None),
                },
                _ => {
                    let ep = self.class_end(p)?;
                    let after = self.pc(ep);
                    if !self.single_match(s, p, ep) {
                        if matches!(after, b'*' | b'?' | b'-') {
                            p = ep + 1;
                            continue;
                        }
                        return Ok(None);
                    }
                    match after {
                        b'?' => {
                            if let Some(end) = self.do_match(s + 1, ep + 1)? {
                                return Ok(Some(end));
                            }
                            p = ep + 1;
                        }
                        b'+' => return self.max_expand(s + 1, p, ep),
                        b'*' => return self.max_expand(s, p, ep),
                        b'-' => return self.min_expand(s, p, ep),
                        _ => {
                            s += 1;
                            p = ep;
                        }
                    }
                }
            }
        }
    }

    /// `classEnd`: the index just past the single-character class at `p`.
    fn class_end(&self, p: usize) -> Res<usize> {
        let len = self.pat.len();
        let first = self.pat[p];
        let mut p = p + 1;
        match first {
            b'%' => {
                if p >= len {
                    return fail("malformed pattern (ends with '%')");
                }
                Ok(p + 1)
            }
            b'[' => {
                if self.pc(p) == b'^' {
                    p += 1;
                }
                loop {
                    if p >= len {
                        return fail("malformed pattern (missing ']')");
                    }
                    let c = self.pat[p];
                    p += 1;
                    if c == b'%' && p < len {
                        p += 1; // an escape such as `%]`
                    }
                    if self.pc(p) == b']' {
                        return Ok(p + 1);
                    }
                }
            }
            _ => Ok(p),
        }
    }

    /// `matchbracketclass`: `p` is the `[`, `ec` the closing `]`.
    fn match_bracket(&self, c: u8, mut p: usize, ec: usize) -> bool {
        let mut sig = true;
        if self.pc(p + 1) == b'^' {
            sig = false;
            p += 1;
        }
        loop {
            p += 1;
            if p >= ec {
                return !sig;
            }
            if self.pat[p] == b'%' {
                p += 1;
                if match_class(c, self.pc(p)) {
                    return sig;
                }
            } else if self.pc(p + 1) == b'-' && p + 2 < ec {
                p += 2;
                if self.pat[p - 2] <= c && c <= self.pat[p] {
                    return sig;
                }
            } else if self.pat[p] == c {
                return sig;
            }
        }
    }

    #[inline]
    fn single_match(&self, s: usize, p: usize, ep: usize) -> bool {
        let Some(&c) = self.src.get(s) else {
            return false;
        };
        match self.pat[p] {
            b'.' => true,
            b'%' => match_class(c, self.pc(p + 1)),
            b'[' => self.match_bracket(c, p, ep - 1),
            literal => literal == c,
        }
    }

    fn match_balance(&mut self, s: usize, p: usize) -> Res<Option<usize>> {
        if p + 1 >= self.pat.len() {
            return fail("malformed pattern (missing arguments to '%b')");
        }
        if s >= self.src.len() || self.src[s] != self.pat[p] {
            return Ok(None);
        }
        let (open, close) = (self.pat[p], self.pat[p + 1]);
        let mut depth = 1usize;
        for i in s + 1..self.src.len() {
            let c = self.src[i];
            if c == close {
                depth -= 1;
                if depth == 0 {
                    self.tick(i - s)?;
                    return Ok(Some(i + 1));
                }
            } else if c == open {
                depth += 1;
            }
        }
        self.tick(self.src.len() - s)?;
        Ok(None)
    }

    fn max_expand(&mut self, s: usize, p: usize, ep: usize) -> Res<Option<usize>> {
        let mut i = 0;
        while self.single_match(s + i, p, ep) {
            i += 1;
        }
        self.tick(i)?;
        loop {
            if let Some(end) = self.do_match(s + i, ep + 1)? {
                return Ok(Some(end));
            }
            if i == 0 {
                return Ok(None);
            }
            i -= 1;
        }
    }

    fn min_expand(&mut self, mut s: usize, p: usize, ep: usize) -> Res<Option<usize>> {
        loop {
            if let Some(end) = self.do_match(s, ep + 1)? {
                return Ok(Some(end));
            }
            if !self.single_match(s, p, ep) {
                return Ok(None);
            }
            s += 1;
        }
    }

    fn start_capture(&mut self, s: usize, p: usize, what: isize) -> Res<Option<usize>> {
        if self.level >= MAXCAPTURES {
            return fail("too many captures");
        }
        self.caps[self.level] = (s, what);
        self.level += 1;
        let r = self.do_match(s, p)?;
        if r.is_none() {
            self.level -= 1;
        }
        Ok(r)
    }

    fn end_capture(&mut self, s: usize, p: usize) -> Res<Option<usize>> {
        let Some(l) = (0..self.level).rev().find(|&l| self.caps[l].1 == CAP_UNFINISHED) else {
            return fail("invalid pattern capture");
        };
        self.caps[l].1 = (s - self.caps[l].0) as isize;
        let r = self.do_match(s, p)?;
        if r.is_none() {
            self.caps[l].1 = CAP_UNFINISHED;
        }
        Ok(r)
    }

    /// A back-reference `%1`..`%9` (`digit` is the ASCII digit).
    fn match_capture(&mut self, s: usize, digit: u8) -> Res<Option<usize>> {
        let l = digit as isize - b'1' as isize;
        if l < 0 || l as usize >= self.level || self.caps[l as usize].1 == CAP_UNFINISHED {
            return fail(format!("invalid capture index %{}", l + 1));
        }
        let (init, len) = self.caps[l as usize];
        // A position capture has no text: in C its length is huge once unsigned, so never fits.
        let Ok(len) = usize::try_from(len) else {
            return Ok(None);
        };
        if self.src.len() - s >= len && self.src[init..init + len] == self.src[s..s + len] {
            self.tick(len)?;
            return Ok(Some(s + len));
        }
        Ok(None)
    }

    /// `get_onecapture`: capture `i`, or the whole match `s..e` when the pattern has none.
    pub fn capture(&self, i: usize, s: usize, e: usize) -> Res<Capture> {
        if i >= self.level {
            if i != 0 {
                return fail(format!("invalid capture index %{}", i + 1));
            }
            return Ok(Capture::Slice(s, e));
        }
        match self.caps[i] {
            (_, CAP_UNFINISHED) => fail("unfinished capture"),
            (init, CAP_POSITION) => Ok(Capture::Position(init + 1)),
            (init, len) => Ok(Capture::Slice(init, init + len as usize)),
        }
    }

    /// How many values `push_captures` pushes: the captures, or the whole match if none.
    pub fn capture_count(&self, whole: bool) -> usize {
        if self.level == 0 && whole {
            1
        } else {
            self.level
        }
    }
}

/// The matcher has run long on a tokio worker: see [`resumable`]. Never reaches Lua.
#[derive(Debug)]
struct GaveUp;

impl std::fmt::Display for GaveUp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("pattern matching moved off the worker")
    }
}

impl std::error::Error for GaveUp {}

/// Runs `step`, a call's work that keeps its progress outside (so that running it again
/// resumes, restarting only the current match attempt, which has no side effects).
///
/// The budget stops a long match, but the matcher cannot yield: until then it would hold its
/// tokio worker, and the tasks queued on that worker (a `/readyz`, the database connection
/// another request is returning) would wait with it. So a call that runs past
/// [`INLINE_STEPS`] gives up and resumes inside `block_in_place`, which hands the worker's
/// queue to another thread first. Short calls, nearly all of them, never pay for that.
pub fn resumable<T>(m: &mut Matcher, mut step: impl FnMut(&mut Matcher) -> Res<T>) -> Res<T> {
    match step(m) {
        Err(mlua::Error::ExternalError(e)) if e.is::<GaveUp>() => {
            m.inline_limit = usize::MAX;
            off_the_worker(|| step(m))
        }
        other => other,
    }
}

fn off_the_worker<T>(f: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        _ => f(),
    }
}

/// `match_class` in the C locale (so `%s` includes `\v`, unlike `u8::is_ascii_whitespace`).
#[inline]
fn match_class(c: u8, class: u8) -> bool {
    let res = match class.to_ascii_lowercase() {
        b'a' => c.is_ascii_alphabetic(),
        b'c' => c < 32 || c == 127,
        b'd' => c.is_ascii_digit(),
        b'g' => c.is_ascii_graphic(),
        b'l' => c.is_ascii_lowercase(),
        b'p' => c.is_ascii_punctuation(),
        b's' => c == b' ' || (9..=13).contains(&c),
        b'u' => c.is_ascii_uppercase(),
        b'w' => c.is_ascii_alphanumeric(),
        b'x' => c.is_ascii_hexdigit(),
        b'z' => c == 0, // deprecated, but Lua 5.4 still has it
        _ => return class == c,
    };
    if class.is_ascii_uppercase() {
        !res
    } else {
        res
    }
}

/// `nospecials`: a pattern with none of these can be searched for as plain text.
pub fn no_specials(p: &[u8]) -> bool {
    !p.iter().any(|c| SPECIALS.contains(c))
}

/// `lmemfind`: where `needle` first occurs in `hay` at or after `from` (the budget is checked
/// as it goes: a long needle in a long subject is quadratic here too).
pub fn find_plain(m: &mut Matcher, from: usize, needle: &[u8]) -> Res<Option<usize>> {
    let hay = m.src;
    if needle.is_empty() {
        return Ok(Some(from));
    }
    if needle.len() > hay.len().saturating_sub(from) {
        return Ok(None);
    }
    let last = hay.len() - needle.len();
    for i in from..=last {
        if hay[i] == needle[0] {
            m.tick(needle.len())?;
            if &hay[i..i + needle.len()] == needle {
                return Ok(Some(i));
            }
        }
    }
    Ok(None)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#[path = "patterns_tests.rs"]
mod tests;
