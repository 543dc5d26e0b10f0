//! The layering rule of ARCHITECTURE.md, checked against the source: every `crate::<module>`
//! a file names must sit in a lower layer than the file's own module, or be an edge the table
//! below allows. A new import that points back up fails here, with the file and line.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Top-level modules of `runtime/src`, lowest layer first.
const LAYERS: &[(&str, u8)] = &[
    // Leaves: no domain, Lua or HTTP imports.
    ("crypto", 0),
    ("secret_file", 0),
    ("net", 0),
    ("config", 0),
    ("request", 0),
    // Storage and rendering.
    ("storage", 1),
    ("with_pool", 1), // the storage macros, named at the crate root
    ("with_conn", 1),
    ("bind_audit_row", 2), // identity's audit macro, named at the crate root
    ("templates", 1),
    ("modules", 1),
    // Domain services.
    ("identity", 2),
    ("oidc", 2),
    // The one context that builds and holds every service.
    ("services", 3),
    // The Lua host, and above it the `assay.*` bindings (which the host reaches only through
    // `lua::Bindings`, handed in when it is built).
    ("lua", 4),
    ("stdlib", 5),
    // Start-up and the server.
    ("bootstrap", 6),
    ("server", 6),
    ("cli", 7),
];

/// Imports allowed within one layer: (from, to).
const SAME_LAYER: &[(&str, &str)] = &[
    ("config", "net"),    // the config parses the proxy networks
    ("oidc", "identity"), // the provider builds on accounts and sessions
    ("storage", "with_pool"),
    ("identity", "bind_audit_row"),
    ("server", "bootstrap"), // start-up wiring
    ("modules", "storage"),  // the module switch is a row
    ("templates", "storage"),
];

/// Back edges that exist today and are to be removed (by the services issue). Each one must
/// still occur: when it is gone, delete it here, so the list only shrinks.
const KNOWN_BACK_EDGES: &[(&str, &str, &str)] = &[];

fn layer(module: &str) -> Option<u8> {
    LAYERS.iter().find(|(m, _)| *m == module).map(|(_, l)| *l)
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read_dir").flatten() {
        let p = entry.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Every `crate::<name>` in `line`, outside comments.
fn crate_refs(line: &str) -> Vec<String> {
    let code = line.split("//").next().unwrap_or_default();
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        let after = &rest[at + 7..];
        let name: String = after.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
        if !name.is_empty() {
            out.push(name);
        }
        rest = after;
    }
    out
}

#[test]
fn imports_point_down_the_layers() {
    let src = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/src"));
    let mut files = Vec::new();
    rust_files(src, &mut files);
    files.sort();
    let mut violations = Vec::new();
    let mut seen_back_edges = BTreeSet::new();
    for file in &files {
        let rel = file.strip_prefix(src).expect("under src");
        let top = rel.components().next().expect("a component").as_os_str().to_string_lossy().trim_end_matches(".rs").to_string();
        if top == "lib" || top == "main" {
            continue;
        }
        let Some(from_layer) = layer(&top) else {
            violations.push(format!("src/{}: module `{top}` is in no layer: add it to LAYERS", rel.display()));
            continue;
        };
        let text = std::fs::read_to_string(file).expect("read");
        for (n, line) in text.lines().enumerate() {
            for to in crate_refs(line) {
                if to == top {
                    continue;
                }
                let Some(to_layer) = layer(&to) else {
                    violations.push(format!("src/{}:{}: `crate::{to}` is in no layer", rel.display(), n + 1));
                    continue;
                };
                if to_layer < from_layer || (to_layer == from_layer && SAME_LAYER.contains(&(top.as_str(), to.as_str()))) {
                    continue;
                }
                if KNOWN_BACK_EDGES.iter().any(|(f, t, _)| *f == top && *t == to) {
                    seen_back_edges.insert((top.clone(), to.clone()));
                    continue;
                }
                violations.push(format!(
                    "src/{}:{}: `{top}` (layer {from_layer}) imports `crate::{to}` (layer {to_layer})",
                    rel.display(),
                    n + 1
                ));
            }
        }
    }
    for (f, t, why) in KNOWN_BACK_EDGES {
        if !seen_back_edges.contains(&(f.to_string(), t.to_string())) {
            violations.push(format!("the known back edge {f} -> {t} ({why}) is gone: remove it from KNOWN_BACK_EDGES"));
        }
    }
    assert!(violations.is_empty(), "imports that break the layers of ARCHITECTURE.md:\n{}", violations.join("\n"));
}

#[test]
fn crate_refs_reads_paths_not_comments() {
    assert_eq!(crate_refs("use crate::storage::Db; // crate::lua"), vec!["storage"]);
    assert_eq!(crate_refs("let x = crate::crypto::sha256_hex(crate::oidc::now())"), vec!["crypto", "oidc"]);
}

/// Each domain's SQL, column lists and row mapping live in its `store/` folder, and the
/// engine's own tables in `storage/`: a service file holds rules and calls its store, and
/// the bindings, the host and the server call services. Checked over the whole source, so a
/// new domain follows the same pattern.
#[test]
fn sql_lives_in_stores() {
    const SQL_MARKS: &[&str] = &["sqlx::query", "with_pool!", "with_conn!", "try_get(", "sqlx::Row"];
    let src = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/src"));
    let storage = src.join("storage");
    let mut files = Vec::new();
    rust_files(src, &mut files);
    files.sort();
    let mut violations = Vec::new();
    for file in files.iter().filter(|f| !f.starts_with(&storage) && !f.components().any(|c| c.as_os_str() == "store")) {
        let text = std::fs::read_to_string(file).expect("read");
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or_default();
            if let Some(mark) = SQL_MARKS.iter().find(|m| code.contains(*m)) {
                let at = file.strip_prefix(src).expect("src").display();
                violations.push(format!("{at}:{}: `{mark}` outside a store/ (or storage/)", n + 1));
            }
        }
    }
    assert!(violations.is_empty(), "SQL outside a store:\n{}", violations.join("\n"));
}
