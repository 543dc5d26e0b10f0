//! Flow sources and the route table they declare.
//!
//! Bundled flows are the `flows/` folder compiled into the binary; a file with the same
//! relative name in `[flows] dir` replaces the bundled one, and new names are added. No
//! rebuild is needed to change a flow: edit the file and restart.
//!
//! Files under `lib/` are not flows: they declare no routes and are never run on their own.
//! They are the flows' shared code, which a flow loads with `require("lib.<name>")` (see
//! `stdlib::require_function`), and they are overridden file by file the same way.

use std::collections::BTreeMap;
use std::path::Path;

use rust_embed::RustEmbed;

#[derive(RustEmbed)]
#[folder = "../flows/"]
#[include = "*.lua"]
struct BundledFlows;

/// Where a flow's text came from, for logs and error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Bundled,
    Override(std::path::PathBuf),
}

#[derive(Debug, Clone)]
pub struct FlowSource {
    /// Relative name, e.g. `hello.lua` or `admin/users.lua`.
    pub name: String,
    pub source: String,
    pub origin: Origin,
}

#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    #[error("cannot read flows directory {path}: {source}")]
    Dir { path: String, source: std::io::Error },
    #[error("flow {name}: {message}")]
    Load { name: String, message: String },
    #[error("route {method} {path} is registered by both {first} and {second}")]
    Conflict { method: String, path: String, first: String, second: String },
}

/// The folder of flow libraries, relative to the flows folder.
pub const LIB_DIR: &str = "lib/";

/// Flow libraries (`lib/*.lua`) by module name (`lib.page` for `lib/page.lua`), for the
/// sandbox's `require`.
#[derive(Debug, Default)]
pub struct LibSources(pub Vec<FlowSource>);

impl LibSources {
    /// The library `require(module)` loads: `lib.a.b` is `lib/a/b.lua`.
    pub fn get(&self, module: &str) -> Option<&FlowSource> {
        let file = format!("{}.lua", module.replace('.', "/"));
        self.0.iter().find(|f| f.name == file)
    }

    pub fn module_names(&self) -> Vec<String> {
        self.0.iter().filter_map(|f| f.name.strip_suffix(".lua")).map(|n| n.replace('/', ".")).collect()
    }
}

/// Bundled flows overlaid with the operator's directory, split into flows (which declare
/// routes) and libraries (files under `lib/`).
pub fn load_sources(dir: Option<&Path>) -> Result<(Vec<FlowSource>, LibSources), FlowError> {
    let all = load_all(dir)?;
    let (libs, flows) = all.into_iter().partition(|f| f.name.starts_with(LIB_DIR));
    Ok((flows, LibSources(libs)))
}

fn load_all(dir: Option<&Path>) -> Result<Vec<FlowSource>, FlowError> {
    let mut by_name: BTreeMap<String, FlowSource> = BTreeMap::new();
    for name in BundledFlows::iter() {
        if let Some(file) = BundledFlows::get(&name) {
            let source = String::from_utf8_lossy(&file.data).into_owned();
            by_name.insert(name.to_string(), FlowSource { name: name.to_string(), source, origin: Origin::Bundled });
        }
    }
    if let Some(dir) = dir {
        for path in lua_files(dir)? {
            let rel = path.strip_prefix(dir).unwrap_or(&path).to_string_lossy().replace('\\', "/");
            let source = std::fs::read_to_string(&path).map_err(|source| FlowError::Dir { path: path.display().to_string(), source })?;
            by_name.insert(rel.clone(), FlowSource { name: rel, source, origin: Origin::Override(path) });
        }
    }
    Ok(by_name.into_values().collect())
}

fn lua_files(dir: &Path) -> Result<Vec<std::path::PathBuf>, FlowError> {
    let err = |source| FlowError::Dir { path: dir.display().to_string(), source };
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).map_err(err)? {
            let path = entry.map_err(err)?.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "lua") {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// A path pattern: literal segments and `{name}` parameters (`/auth/admin/auth/users/{id}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathPattern {
    pub text: String,
    segments: Vec<Segment>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param(String),
}

impl PathPattern {
    pub fn parse(text: &str) -> Result<PathPattern, String> {
        if !text.starts_with('/') {
            return Err(format!("route path {text:?} must start with '/'"));
        }
        let mut segments = Vec::new();
        for seg in text.split('/').skip(1) {
            if let Some(name) = seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    return Err(format!("route path {text:?}: bad parameter name {seg:?}"));
                }
                segments.push(Segment::Param(name.to_string()));
            } else if seg.contains(['{', '}', '?', '#']) {
                return Err(format!("route path {text:?}: bad segment {seg:?}"));
            } else {
                segments.push(Segment::Literal(seg.to_string()));
            }
        }
        Ok(PathPattern { text: text.to_string(), segments })
    }

    /// The parameters if `path` matches. Parameters are percent-decoded.
    pub fn matches(&self, path: &str) -> Option<Vec<(String, String)>> {
        let mut params = Vec::new();
        let mut parts = path.split('/').skip(1);
        for seg in &self.segments {
            let part = parts.next()?;
            match seg {
                Segment::Literal(l) if l == part => {}
                Segment::Literal(_) => return None,
                Segment::Param(name) => {
                    if part.is_empty() {
                        return None;
                    }
                    let value = percent_encoding::percent_decode_str(part).decode_utf8().ok()?;
                    params.push((name.clone(), value.into_owned()));
                }
            }
        }
        parts.next().is_none().then_some(params)
    }

    /// More literal segments wins: `/users/me` beats `/users/{id}`.
    fn specificity(&self) -> usize {
        self.segments.iter().filter(|s| matches!(s, Segment::Literal(_))).count()
    }
}

/// One registered route: which flow declares it and at which position, so a request can find
/// the handler again when it re-runs the flow in a fresh environment.
#[derive(Debug, Clone)]
pub struct RouteEntry {
    pub method: String,
    pub pattern: PathPattern,
    pub flow: usize,
    pub ordinal: usize,
}

#[derive(Debug, Default)]
pub struct RouteTable {
    entries: Vec<RouteEntry>,
}

pub enum RouteMatch<'a> {
    Found(&'a RouteEntry, Vec<(String, String)>),
    /// The path exists with other methods.
    MethodNotAllowed(Vec<String>),
    NotFound,
}

impl RouteTable {
    pub fn add(&mut self, entry: RouteEntry, flows: &[FlowSource]) -> Result<(), FlowError> {
        if let Some(prev) = self.entries.iter().find(|e| e.method == entry.method && e.pattern == entry.pattern) {
            let name = |i: usize| flows.get(i).map(|f| f.name.clone()).unwrap_or_default();
            return Err(FlowError::Conflict {
                method: entry.method,
                path: entry.pattern.text,
                first: name(prev.flow),
                second: name(entry.flow),
            });
        }
        self.entries.push(entry);
        self.entries.sort_by_key(|e| std::cmp::Reverse(e.pattern.specificity()));
        Ok(())
    }

    pub fn find(&self, method: &str, path: &str) -> RouteMatch<'_> {
        let mut allowed = Vec::new();
        for e in &self.entries {
            if let Some(params) = e.pattern.matches(path) {
                if e.method == method {
                    return RouteMatch::Found(e, params);
                }
                allowed.push(e.method.clone());
            }
        }
        if allowed.is_empty() {
            RouteMatch::NotFound
        } else {
            allowed.sort();
            allowed.dedup();
            RouteMatch::MethodNotAllowed(allowed)
        }
    }

    pub fn entries(&self) -> &[RouteEntry] {
        &self.entries
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        let p = PathPattern::parse("/auth/users/{id}").ok();
        let p = p.as_ref();
        assert_eq!(p.and_then(|p| p.matches("/auth/users/a%20b")), Some(vec![("id".into(), "a b".into())]));
        assert_eq!(p.and_then(|p| p.matches("/auth/users/")), None);
        assert_eq!(p.and_then(|p| p.matches("/auth/users/1/x")), None);
        assert!(PathPattern::parse("auth").is_err());
        assert!(PathPattern::parse("/a/{b c}").is_err());
    }

    #[test]
    fn literal_beats_parameter() {
        let mut t = RouteTable::default();
        let flows = vec![];
        let mk = |p: &str, ordinal| RouteEntry {
            method: "GET".into(),
            pattern: PathPattern::parse(p).unwrap_or_else(|_| PathPattern { text: String::new(), segments: vec![] }),
            flow: 0,
            ordinal,
        };
        assert!(t.add(mk("/u/{id}", 0), &flows).is_ok());
        assert!(t.add(mk("/u/me", 1), &flows).is_ok());
        assert!(matches!(t.find("GET", "/u/me"), RouteMatch::Found(e, _) if e.ordinal == 1));
        assert!(matches!(t.find("GET", "/u/7"), RouteMatch::Found(e, _) if e.ordinal == 0));
        assert!(matches!(t.find("POST", "/u/7"), RouteMatch::MethodNotAllowed(_)));
        assert!(t.add(mk("/u/me", 2), &flows).is_err());
    }
}
