//! minijinja templates: bundled defaults compiled into the binary, each replaceable by a file of
//! the same name in `[templates] dir`. Templates are parsed once on first use and cached.
//! `.html` templates auto-escape.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use minijinja::{Environment, ErrorKind};
use rust_embed::RustEmbed;

#[derive(RustEmbed)]
#[folder = "../templates/"]
struct BundledTemplates;

#[derive(Clone)]
pub struct Templates {
    env: Arc<Environment<'static>>,
}

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("not_found: no template named {0:?}")]
    NotFound(String),
    #[error("render_error: {0}")]
    Render(String),
}

impl TemplateError {
    pub fn code(&self) -> &'static str {
        match self {
            TemplateError::NotFound(_) => "not_found",
            TemplateError::Render(_) => "render_error",
        }
    }

    pub fn message(&self) -> String {
        match self {
            TemplateError::NotFound(name) => format!("no template named {name:?}"),
            TemplateError::Render(why) => why.clone(),
        }
    }
}

impl Templates {
    pub fn new(override_dir: Option<&Path>) -> Templates {
        let mut env = Environment::new();
        let dir: Option<PathBuf> = override_dir.map(Path::to_path_buf);
        env.set_loader(move |name| load(dir.as_deref(), name));
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Lenient);
        Templates { env: Arc::new(env) }
    }

    pub fn render(&self, name: &str, ctx: &serde_json::Value) -> Result<String, TemplateError> {
        let tmpl = self.env.get_template(name).map_err(|e| match e.kind() {
            ErrorKind::TemplateNotFound => TemplateError::NotFound(name.to_string()),
            _ => TemplateError::Render(describe(&e)),
        })?;
        tmpl.render(ctx).map_err(|e| TemplateError::Render(describe(&e)))
    }
}

/// The override file if there is one, else the bundled template.
fn load(dir: Option<&Path>, name: &str) -> Result<Option<String>, minijinja::Error> {
    // Names are relative and never climb out of the template folder.
    if name.starts_with('/') || name.split(['/', '\\']).any(|seg| seg == ".." || seg.is_empty()) {
        return Ok(None);
    }
    if let Some(dir) = dir {
        let path = dir.join(name);
        match std::fs::read_to_string(&path) {
            Ok(text) => return Ok(Some(text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(minijinja::Error::new(ErrorKind::InvalidOperation, format!("cannot read {}: {e}", path.display()))),
        }
    }
    Ok(BundledTemplates::get(name).map(|f| String::from_utf8_lossy(&f.data).into_owned()))
}

fn describe(e: &minijinja::Error) -> String {
    match (e.name(), e.line()) {
        (Some(n), Some(l)) => format!("{n}:{l}: {e}"),
        _ => e.to_string(),
    }
}
