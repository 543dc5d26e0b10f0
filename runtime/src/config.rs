//! `engine.toml`: every key declared once here, with its default; `engine.toml.example`
//! documents the same keys and a test loads it so the two never disagree.
//!
//! Errors name the key and the line (`engine.toml:7: backend.url: ...`) and the CLI exits
//! with code 2 on them. String values may read the environment with `${VAR}`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer};
use toml::Spanned;
use url::Url;

use crate::server::client_ip::{Cidr, ForwardedHeader};

/// A configuration problem: where (file, line, key) and why.
#[derive(Debug, thiserror::Error)]
#[error("{}", self.render())]
pub struct ConfigError {
    pub file: String,
    pub line: Option<usize>,
    pub key: Option<String>,
    pub reason: String,
}

impl ConfigError {
    fn render(&self) -> String {
        let mut s = self.file.clone();
        if let Some(line) = self.line {
            s.push_str(&format!(":{line}"));
        }
        if let Some(key) = &self.key {
            s.push_str(&format!(": {key}"));
        }
        s.push_str(&format!(": {}", self.reason));
        s
    }
}

/// A string from the config file with `${VAR}` already replaced by the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvString(pub String);

impl<'de> Deserialize<'de> for EnvString {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        expand_env(&raw).map(EnvString).map_err(serde::de::Error::custom)
    }
}

/// Replaces `${NAME}` with the variable's value; `$$` is a literal `$`. An unset variable is
/// an error rather than an empty string: a silently empty secret is worse than no start.
pub fn expand_env(raw: &str) -> Result<String, String> {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body) = after.strip_prefix('{') {
            let end = body.find('}').ok_or_else(|| format!("unclosed `${{` in {raw:?}"))?;
            let name = &body[..end];
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!("`${{{name}}}` is not a valid environment variable name"));
            }
            let value = std::env::var(name)
                .map_err(|_| format!("environment variable `{name}` is not set"))?;
            out.push_str(&value);
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendType {
    Sqlite,
    Postgres,
}

/// How the SMTP connection is secured: implicit TLS (465), STARTTLS (587), or none (a local relay).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    Tls,
    Starttls,
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

// ---- the file as written (every field optional, spans kept for later checks) ----

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    auto_enable_modules: Option<Vec<EnvString>>,
    #[serde(default)]
    server: RawServer,
    backend: Option<Spanned<RawBackend>>,
    #[serde(default)]
    auth: RawAuth,
    #[serde(default)]
    flows: RawFlows,
    #[serde(default)]
    templates: RawTemplates,
    #[serde(default)]
    log: RawLog,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    bind_addr: Option<Spanned<EnvString>>,
    public_url: Option<Spanned<EnvString>>,
    max_body_bytes: Option<u64>,
    header_read_timeout_secs: Option<u64>,
    body_read_timeout_secs: Option<u64>,
    idle_timeout_secs: Option<u64>,
    shutdown_grace_secs: Option<u64>,
    trusted_proxies: Option<Spanned<Vec<EnvString>>>,
    forwarded_header: Option<Spanned<EnvString>>,
    hsts_max_age_secs: Option<u64>,
    hsts_include_subdomains: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBackend {
    #[serde(rename = "type")]
    kind: Option<BackendType>,
    url: Option<EnvString>,
    data_dir: Option<EnvString>,
    max_connections: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAuth {
    issuer: Option<Spanned<EnvString>>,
    admin_api_keys: Option<Vec<EnvString>>,
    master_key: Option<EnvString>,
    #[serde(default)]
    passkey: RawPasskey,
    #[serde(default)]
    oidc_provider: RawOidcProvider,
    #[serde(default)]
    password: RawPassword,
    #[serde(default)]
    session: RawSession,
    #[serde(default)]
    registration: RawRegistration,
    #[serde(default)]
    brute_force: RawBruteForce,
    smtp: Option<Spanned<RawSmtp>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPassword {
    pepper: Option<EnvString>,
    memory_kib: Option<u32>,
    iterations: Option<u32>,
    parallelism: Option<u32>,
    max_concurrent_hashes: Option<usize>,
    max_queued_hashes: Option<usize>,
    min_length: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSession {
    cookie_name: Option<EnvString>,
    ttl_secs: Option<u64>,
    idle_timeout_secs: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRegistration {
    enabled: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBruteForce {
    free_failures: Option<u32>,
    max_failures: Option<u32>,
    ip_max_failures: Option<u32>,
    lockout_secs: Option<u64>,
    window_secs: Option<u64>,
    recovery_per_ip: Option<u32>,
    mails_per_address: Option<u32>,
    registration_per_ip: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSmtp {
    host: Option<EnvString>,
    port: Option<u16>,
    tls: Option<SmtpTls>,
    username: Option<EnvString>,
    password: Option<EnvString>,
    from: Option<EnvString>,
    timeout_secs: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPasskey {
    rp_id: Option<EnvString>,
    rp_name: Option<EnvString>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOidcProvider {
    enabled: Option<bool>,
    key_rotation_days: Option<u64>,
    key_retention_days: Option<u64>,
    code_ttl_secs: Option<u64>,
    access_token_ttl_secs: Option<u64>,
    id_token_ttl_secs: Option<u64>,
    refresh_token_ttl_secs: Option<u64>,
    refresh_grace_secs: Option<u64>,
    request_ttl_secs: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFlows {
    dir: Option<EnvString>,
    budget_ms: Option<u64>,
    memory_limit_mb: Option<u64>,
    pool_size: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTemplates {
    dir: Option<EnvString>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLog {
    level: Option<EnvString>,
    format: Option<LogFormat>,
}

// ---- the resolved configuration the engine runs on ----

#[derive(Debug, Clone)]
pub struct Config {
    /// Where it came from (`None` = built-in defaults), for messages.
    pub source: Option<PathBuf>,
    pub auto_enable_modules: Vec<String>,
    pub server: ServerConfig,
    pub backend: BackendConfig,
    pub auth: AuthConfig,
    pub flows: FlowsConfig,
    pub templates: TemplatesConfig,
    pub log: LogConfig,
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub bind_addr: SocketAddr,
    /// Without a trailing slash.
    pub public_url: Url,
    pub max_body_bytes: u64,
    pub header_read_timeout_secs: u64,
    pub body_read_timeout_secs: u64,
    pub idle_timeout_secs: u64,
    pub shutdown_grace_secs: u64,
    /// Peers whose forwarding header is believed (empty: none, the TCP peer is the client).
    pub trusted_proxies: Vec<Cidr>,
    /// The one header those proxies write the client's address into.
    pub forwarded_header: ForwardedHeader,
    /// `Strict-Transport-Security: max-age` when the public URL is https (0: no header).
    pub hsts_max_age_secs: u64,
    pub hsts_include_subdomains: bool,
}

#[derive(Debug, Clone)]
pub struct BackendConfig {
    pub kind: BackendType,
    pub url: Option<String>,
    pub data_dir: PathBuf,
    pub max_connections: u32,
}

#[derive(Debug, Clone)]
pub struct AuthConfig {
    pub issuer: String,
    pub admin_api_keys: Vec<String>,
    /// `None`: generated into `{data_dir}/master-key` on first start.
    pub master_key: Option<String>,
    pub passkey: PasskeyConfig,
    pub oidc_provider: OidcProviderConfig,
    pub password: PasswordConfig,
    pub session: SessionConfig,
    pub registration_enabled: bool,
    pub brute_force: BruteForceConfig,
    pub smtp: Option<SmtpConfig>,
}

#[derive(Debug, Clone)]
pub struct PasswordConfig {
    /// `None`: derived from the master key.
    pub pepper: Option<String>,
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
    /// `None`: sized from the CPUs and the memory at start-up.
    pub max_concurrent_hashes: Option<usize>,
    /// Hashes that may wait for a thread; past that a request is answered 503 at once.
    /// `None`: 16 per hashing thread.
    pub max_queued_hashes: Option<usize>,
    pub min_length: usize,
}

#[derive(Debug, Clone)]
pub struct SessionConfig {
    pub cookie_name: String,
    pub ttl_secs: u64,
    pub idle_timeout_secs: u64,
}

#[derive(Debug, Clone)]
pub struct BruteForceConfig {
    pub free_failures: u32,
    pub max_failures: u32,
    pub ip_max_failures: u32,
    pub lockout_secs: u64,
    pub window_secs: u64,
    /// Recovery requests per hour from one client IP (answered 429 past it).
    pub recovery_per_ip: u32,
    /// Recovery mails and registration notices per hour to one address (past it the mail is
    /// skipped, the page is the same).
    pub mails_per_address: u32,
    /// Registration attempts per hour from one client IP.
    pub registration_per_ip: u32,
}

#[derive(Debug, Clone)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    pub username: Option<String>,
    pub password: Option<String>,
    pub from: String,
    pub timeout_secs: u64,
}

#[derive(Debug, Clone)]
pub struct PasskeyConfig {
    pub rp_id: String,
    pub rp_name: String,
}

#[derive(Debug, Clone)]
pub struct OidcProviderConfig {
    pub enabled: bool,
    /// Active signing keys older than this are rotated by the engine (0: only on demand).
    pub key_rotation_days: u64,
    /// Retired keys are unpublished and deleted this long after retirement (0: kept).
    pub key_retention_days: u64,
    /// How long an authorization code can be exchanged.
    pub code_ttl_secs: u64,
    pub access_token_ttl_secs: u64,
    pub id_token_ttl_secs: u64,
    pub refresh_token_ttl_secs: u64,
    /// A spent refresh token still works this long (two tabs refreshing at once); a reuse
    /// after it revokes the token's whole family.
    pub refresh_grace_secs: u64,
    /// How long a parked authorization request waits for the login and consent flows.
    pub request_ttl_secs: u64,
}

#[derive(Debug, Clone)]
pub struct FlowsConfig {
    pub dir: Option<PathBuf>,
    pub budget_ms: u64,
    pub memory_limit_mb: u64,
    pub pool_size: usize,
}

impl FlowsConfig {
    /// The memory ceiling of one Lua state, in bytes.
    pub fn memory_limit_bytes(&self) -> usize {
        (self.memory_limit_mb as usize).saturating_mul(1024 * 1024)
    }
}

#[derive(Debug, Clone)]
pub struct TemplatesConfig {
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct LogConfig {
    pub level: String,
    pub format: LogFormat,
}

pub const DEFAULT_BIND: &str = "127.0.0.1:3000";
pub const DEFAULT_DATA_DIR: &str = "./data";

impl Config {
    /// The configuration a fresh machine gets with no file at all.
    pub fn defaults() -> Config {
        // Resolving the empty document cannot fail: every default below is valid.
        match Self::from_toml_str("", None) {
            Ok(c) => c,
            Err(e) => unreachable_config(e),
        }
    }

    /// Reads and resolves a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: path.display().to_string(),
            line: None,
            key: None,
            reason: format!("cannot read the config file: {e}"),
        })?;
        Self::from_toml_str(&text, Some(path))
    }

    pub fn from_toml_str(text: &str, path: Option<&Path>) -> Result<Config, ConfigError> {
        let file = path.map(|p| p.display().to_string()).unwrap_or_else(|| "<defaults>".into());
        let raw: RawConfig = toml::from_str(text).map_err(|e| toml_error(&file, text, &e))?;
        let at = |span: Option<std::ops::Range<usize>>, key: &str, reason: String| ConfigError {
            file: file.clone(),
            line: span.map(|s| line_of(text, s.start)),
            key: Some(key.to_string()),
            reason,
        };

        // [server]
        let bind_addr = match &raw.server.bind_addr {
            None => parse_bind(DEFAULT_BIND).map_err(|r| at(None, "server.bind_addr", r))?,
            Some(s) => parse_bind(&s.get_ref().0)
                .map_err(|r| at(Some(s.span()), "server.bind_addr", r))?,
        };
        let public_url = match &raw.server.public_url {
            None => default_public_url(bind_addr),
            Some(s) => parse_base_url(&s.get_ref().0)
                .map_err(|r| at(Some(s.span()), "server.public_url", r))?,
        };
        let trusted_proxies = match &raw.server.trusted_proxies {
            None => Vec::new(),
            Some(list) => list
                .get_ref()
                .iter()
                .map(|c| Cidr::parse(&c.0))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|r| at(Some(list.span()), "server.trusted_proxies", r))?,
        };
        let forwarded_header = match &raw.server.forwarded_header {
            None => ForwardedHeader::XForwardedFor,
            Some(h) => ForwardedHeader::parse(&h.get_ref().0).map_err(|r| at(Some(h.span()), "server.forwarded_header", r))?,
        };
        let server = ServerConfig {
            bind_addr,
            public_url: public_url.clone(),
            max_body_bytes: raw.server.max_body_bytes.unwrap_or(1024 * 1024),
            header_read_timeout_secs: raw.server.header_read_timeout_secs.unwrap_or(10),
            body_read_timeout_secs: raw.server.body_read_timeout_secs.unwrap_or(30).max(1),
            idle_timeout_secs: raw.server.idle_timeout_secs.unwrap_or(60),
            shutdown_grace_secs: raw.server.shutdown_grace_secs.unwrap_or(30),
            trusted_proxies,
            forwarded_header,
            hsts_max_age_secs: raw.server.hsts_max_age_secs.unwrap_or(365 * 86400),
            hsts_include_subdomains: raw.server.hsts_include_subdomains.unwrap_or(false),
        };
        if server.max_body_bytes == 0 {
            return Err(at(None, "server.max_body_bytes", "must be greater than 0".into()));
        }
        // Two years is what the preload list asks for; far beyond it is a typo, not a policy.
        if server.hsts_max_age_secs > 10 * 365 * 86400 {
            return Err(at(None, "server.hsts_max_age_secs", "must be at most 315360000 (10 years); 0 sends no header".into()));
        }

        // [backend]
        let (raw_backend, backend_span) = match raw.backend {
            Some(b) => {
                let span = b.span();
                (b.into_inner(), Some(span))
            }
            None => (RawBackend::default(), None),
        };
        let kind = raw_backend.kind.unwrap_or(BackendType::Sqlite);
        let url = raw_backend.url.map(|u| u.0);
        if kind == BackendType::Postgres {
            match &url {
                None => {
                    return Err(at(
                        backend_span,
                        "backend.url",
                        "missing required value (required when backend.type = \"postgres\")".into(),
                    ))
                }
                Some(u) if !(u.starts_with("postgres://") || u.starts_with("postgresql://")) => {
                    return Err(at(
                        backend_span,
                        "backend.url",
                        "must be a postgres:// or postgresql:// URL".into(),
                    ))
                }
                Some(_) => {}
            }
        }
        let backend = BackendConfig {
            kind,
            url,
            data_dir: PathBuf::from(
                raw_backend.data_dir.map(|d| d.0).unwrap_or_else(|| DEFAULT_DATA_DIR.into()),
            ),
            max_connections: raw_backend.max_connections.unwrap_or(10).max(1),
        };

        // [auth]
        let issuer = match &raw.auth.issuer {
            None => format!("{}/auth", public_url.as_str().trim_end_matches('/')),
            Some(s) => {
                let url = parse_base_url(&s.get_ref().0)
                    .map_err(|r| at(Some(s.span()), "auth.issuer", r))?;
                // Kept as written (minus a trailing slash): RPs compare it byte for byte.
                url.as_str().trim_end_matches('/').to_string()
            }
        };
        let host = public_url.host_str().unwrap_or("localhost").to_string();
        let password = resolve_password(raw.auth.password).map_err(|(key, r)| at(None, &key, r))?;
        let session = resolve_session(raw.auth.session).map_err(|(key, r)| at(None, &key, r))?;
        let brute_force = resolve_brute_force(raw.auth.brute_force).map_err(|(key, r)| at(None, &key, r))?;
        let smtp = match raw.auth.smtp {
            None => None,
            Some(s) => {
                let span = s.span();
                Some(resolve_smtp(s.into_inner(), &host).map_err(|(key, r)| at(Some(span.clone()), &key, r))?)
            }
        };
        let master_key = raw.auth.master_key.map(|k| k.0);
        if master_key.as_ref().is_some_and(|k| k.len() < 32) {
            return Err(at(None, "auth.master_key", "must be at least 32 characters (use 64 hex digits)".into()));
        }
        let auth = AuthConfig {
            master_key,
            password,
            session,
            registration_enabled: raw.auth.registration.enabled.unwrap_or(false),
            brute_force,
            smtp,
            issuer,
            admin_api_keys: raw
                .auth
                .admin_api_keys
                .unwrap_or_default()
                .into_iter()
                .map(|k| k.0)
                .collect(),
            passkey: PasskeyConfig {
                rp_id: raw.auth.passkey.rp_id.map(|v| v.0).unwrap_or(host),
                rp_name: raw.auth.passkey.rp_name.map(|v| v.0).unwrap_or_else(|| "assay-engine".into()),
            },
            oidc_provider: OidcProviderConfig {
                enabled: raw.auth.oidc_provider.enabled.unwrap_or(true),
                key_rotation_days: raw.auth.oidc_provider.key_rotation_days.unwrap_or(90),
                key_retention_days: raw.auth.oidc_provider.key_retention_days.unwrap_or(30),
                code_ttl_secs: raw.auth.oidc_provider.code_ttl_secs.unwrap_or(60),
                access_token_ttl_secs: raw.auth.oidc_provider.access_token_ttl_secs.unwrap_or(3600),
                id_token_ttl_secs: raw.auth.oidc_provider.id_token_ttl_secs.unwrap_or(3600),
                refresh_token_ttl_secs: raw.auth.oidc_provider.refresh_token_ttl_secs.unwrap_or(30 * 86400),
                refresh_grace_secs: raw.auth.oidc_provider.refresh_grace_secs.unwrap_or(5),
                request_ttl_secs: raw.auth.oidc_provider.request_ttl_secs.unwrap_or(1800),
            },
        };
        {
            let op = &auth.oidc_provider;
            for (key, v) in [
                ("code_ttl_secs", op.code_ttl_secs),
                ("access_token_ttl_secs", op.access_token_ttl_secs),
                ("id_token_ttl_secs", op.id_token_ttl_secs),
                ("refresh_token_ttl_secs", op.refresh_token_ttl_secs),
                ("request_ttl_secs", op.request_ttl_secs),
            ] {
                if v == 0 || v > 366 * 86400 {
                    return Err(at(None, &format!("auth.oidc_provider.{key}"), "must be between 1 and 31622400 (366 days)".into()));
                }
            }
            if op.refresh_grace_secs > 300 {
                return Err(at(None, "auth.oidc_provider.refresh_grace_secs", "must be at most 300: a grace window is for concurrent refreshes, not a second lifetime".into()));
            }
        }
        if auth.admin_api_keys.iter().any(|k| k.len() < 16) {
            return Err(at(
                None,
                "auth.admin_api_keys",
                "every key must be at least 16 characters".into(),
            ));
        }

        let flows = FlowsConfig {
            dir: raw.flows.dir.map(|d| PathBuf::from(d.0)),
            budget_ms: raw.flows.budget_ms.unwrap_or(5_000).max(1),
            memory_limit_mb: raw.flows.memory_limit_mb.unwrap_or(64).max(1),
            pool_size: raw.flows.pool_size.unwrap_or(64),
        };
        let templates = TemplatesConfig { dir: raw.templates.dir.map(|d| PathBuf::from(d.0)) };
        let log = LogConfig {
            level: raw.log.level.map(|l| l.0).unwrap_or_else(|| "info".into()),
            format: raw.log.format.unwrap_or(LogFormat::Text),
        };
        let modules = raw
            .auto_enable_modules
            .map(|m| m.into_iter().map(|s| s.0).collect::<Vec<_>>())
            .unwrap_or_else(|| vec!["auth".to_string()]);
        for m in &modules {
            if !crate::modules::is_known(m) {
                return Err(at(
                    None,
                    "auto_enable_modules",
                    format!("unknown module {m:?} (known: {})", crate::modules::KNOWN.join(", ")),
                ));
            }
        }

        Ok(Config {
            source: path.map(Path::to_path_buf),
            auto_enable_modules: modules,
            server,
            backend,
            auth,
            flows,
            templates,
            log,
        })
    }

    /// True when cookies must carry `Secure`.
    pub fn is_https(&self) -> bool {
        self.server.public_url.scheme() == "https"
    }

    /// The name a cookie of the engine's really has: `__Host-<base>` when the public URL is
    /// https, so that the browser refuses it from a sibling subdomain or over plain http
    /// (a planted cookie was how the review forged a CSRF token), else `base` itself.
    pub fn cookie_name(&self, base: &str) -> String {
        if self.is_https() && !base.starts_with("__Host-") && !base.starts_with("__Secure-") {
            format!("__Host-{base}")
        } else {
            base.to_string()
        }
    }

    /// The session cookie's name, as [`Config::cookie_name`] makes it.
    pub fn session_cookie(&self) -> String {
        self.cookie_name(&self.auth.session.cookie_name)
    }

    /// The `Strict-Transport-Security` value every response carries, if any: only for an
    /// https public URL (over http browsers ignore it, and it would pin a host that has no TLS).
    pub fn hsts(&self) -> Option<String> {
        let s = &self.server;
        if !self.is_https() || s.hsts_max_age_secs == 0 {
            return None;
        }
        let sub = if s.hsts_include_subdomains { "; includeSubDomains" } else { "" };
        Some(format!("max-age={}{sub}", s.hsts_max_age_secs))
    }

    pub fn public_url(&self) -> &str {
        self.server.public_url.as_str().trim_end_matches('/')
    }
}

fn resolve_password(raw: RawPassword) -> Result<PasswordConfig, (String, String)> {
    let c = PasswordConfig {
        pepper: raw.pepper.map(|p| p.0),
        memory_kib: raw.memory_kib.unwrap_or(19 * 1024),
        iterations: raw.iterations.unwrap_or(2),
        parallelism: raw.parallelism.unwrap_or(1),
        max_concurrent_hashes: raw.max_concurrent_hashes,
        max_queued_hashes: raw.max_queued_hashes,
        min_length: raw.min_length.unwrap_or(8),
    };
    let bad = |k: &str, r: &str| Err((format!("auth.password.{k}"), r.to_string()));
    if c.pepper.as_ref().is_some_and(|p| p.len() < 16) {
        return bad("pepper", "must be at least 16 characters");
    }
    // Below OWASP's floor (19 MiB, t=2) only for tests that set it explicitly.
    if c.memory_kib < 8 * c.parallelism.max(1) || c.memory_kib > 4 * 1024 * 1024 {
        return bad("memory_kib", "must be between 8 x parallelism and 4194304 (4 GiB)");
    }
    if !(1..=100).contains(&c.iterations) {
        return bad("iterations", "must be between 1 and 100");
    }
    if !(1..=64).contains(&c.parallelism) {
        return bad("parallelism", "must be between 1 and 64");
    }
    if c.max_concurrent_hashes == Some(0) {
        return bad("max_concurrent_hashes", "must be at least 1");
    }
    if c.max_queued_hashes == Some(0) {
        return bad("max_queued_hashes", "must be at least 1");
    }
    if !(1..=128).contains(&c.min_length) {
        return bad("min_length", "must be between 1 and 128");
    }
    Ok(c)
}

fn resolve_session(raw: RawSession) -> Result<SessionConfig, (String, String)> {
    let c = SessionConfig {
        cookie_name: raw.cookie_name.map(|c| c.0).unwrap_or_else(|| "assay_session".into()),
        ttl_secs: raw.ttl_secs.unwrap_or(30 * 24 * 3600),
        idle_timeout_secs: raw.idle_timeout_secs.unwrap_or(7 * 24 * 3600),
    };
    let token = |ch: char| ch.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(ch);
    if c.cookie_name.is_empty() || !c.cookie_name.chars().all(token) {
        return Err(("auth.session.cookie_name".into(), "is not a valid cookie name".into()));
    }
    if c.ttl_secs < 60 {
        return Err(("auth.session.ttl_secs".into(), "must be at least 60".into()));
    }
    if c.idle_timeout_secs < 60 {
        return Err(("auth.session.idle_timeout_secs".into(), "must be at least 60".into()));
    }
    Ok(c)
}

fn resolve_brute_force(raw: RawBruteForce) -> Result<BruteForceConfig, (String, String)> {
    let c = BruteForceConfig {
        free_failures: raw.free_failures.unwrap_or(3),
        max_failures: raw.max_failures.unwrap_or(10),
        ip_max_failures: raw.ip_max_failures.unwrap_or(100),
        lockout_secs: raw.lockout_secs.unwrap_or(15 * 60),
        window_secs: raw.window_secs.unwrap_or(15 * 60),
        recovery_per_ip: raw.recovery_per_ip.unwrap_or(20),
        mails_per_address: raw.mails_per_address.unwrap_or(5),
        registration_per_ip: raw.registration_per_ip.unwrap_or(20),
    };
    if c.recovery_per_ip == 0 || c.mails_per_address == 0 || c.registration_per_ip == 0 {
        return Err(("auth.brute_force.recovery_per_ip".into(), "recovery_per_ip, mails_per_address and registration_per_ip must be positive".into()));
    }
    if c.max_failures == 0 || c.free_failures >= c.max_failures {
        return Err(("auth.brute_force.max_failures".into(), "must be greater than free_failures".into()));
    }
    if c.ip_max_failures < c.max_failures {
        return Err(("auth.brute_force.ip_max_failures".into(), "must be at least max_failures".into()));
    }
    if c.window_secs == 0 || c.lockout_secs == 0 {
        return Err(("auth.brute_force.window_secs".into(), "window_secs and lockout_secs must be positive".into()));
    }
    Ok(c)
}

fn resolve_smtp(raw: RawSmtp, public_host: &str) -> Result<SmtpConfig, (String, String)> {
    let host = raw.host.map(|h| h.0).ok_or(("auth.smtp.host".to_string(), "missing required value".to_string()))?;
    let tls = raw.tls.unwrap_or(SmtpTls::Starttls);
    let c = SmtpConfig {
        port: raw.port.unwrap_or(match tls {
            SmtpTls::Tls => 465,
            SmtpTls::Starttls => 587,
            SmtpTls::None => 25,
        }),
        host,
        tls,
        username: raw.username.map(|u| u.0),
        password: raw.password.map(|p| p.0),
        from: raw.from.map(|f| f.0).unwrap_or_else(|| format!("assay <no-reply@{public_host}>")),
        timeout_secs: raw.timeout_secs.unwrap_or(15).max(1),
    };
    if c.username.is_some() != c.password.is_some() {
        return Err(("auth.smtp.username".into(), "username and password go together".into()));
    }
    if c.from.parse::<lettre::message::Mailbox>().is_err() {
        return Err(("auth.smtp.from".into(), format!("{:?} is not a mailbox (\"Name <addr@host>\")", c.from)));
    }
    Ok(c)
}

#[allow(clippy::panic)]
fn unreachable_config(e: ConfigError) -> ! {
    // Only reachable if a built-in default were invalid: a programming error caught by tests.
    panic!("built-in default configuration is invalid: {e}")
}

fn parse_bind(s: &str) -> Result<SocketAddr, String> {
    s.parse::<SocketAddr>()
        .map_err(|_| format!("{s:?} is not an address of the form HOST:PORT (for example 0.0.0.0:3000)"))
}

fn parse_base_url(s: &str) -> Result<Url, String> {
    let url = Url::parse(s).map_err(|e| format!("{s:?} is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("{s:?} must use http or https"));
    }
    if url.host_str().is_none() {
        return Err(format!("{s:?} has no host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("{s:?} must not carry a query or a fragment"));
    }
    Ok(url)
}

fn default_public_url(bind: SocketAddr) -> Url {
    let host = if bind.ip().is_unspecified() { "127.0.0.1".to_string() } else { bind.ip().to_string() };
    let host = if bind.is_ipv6() && !bind.ip().is_unspecified() { format!("[{host}]") } else { host };
    Url::parse(&format!("http://{host}:{}", bind.port()))
        .unwrap_or_else(|_| Url::parse("http://127.0.0.1:3000").unwrap_or_else(|e| unreachable_url(e)))
}

#[allow(clippy::panic)]
fn unreachable_url(e: url::ParseError) -> ! {
    panic!("constant URL failed to parse: {e}")
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// Turns a TOML/serde error into one naming the key and its line. toml reports spans, not key
/// paths, so the key is recovered from the source: the table header above plus the key on the
/// offending line (or the field named in a "missing field" message).
fn toml_error(file: &str, text: &str, e: &toml::de::Error) -> ConfigError {
    let reason = e.message().trim().to_string();
    let Some(span) = e.span() else {
        return ConfigError { file: file.into(), line: None, key: None, reason };
    };
    let line_no = line_of(text, span.start);
    let line_start = text[..span.start.min(text.len())].rfind('\n').map(|i| i + 1).unwrap_or(0);
    let line_text = text[line_start..].lines().next().unwrap_or("");
    let table = text[..line_start]
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('[') && !l.starts_with("[["))
        .map(|l| l.trim_matches(|c| c == '[' || c == ']').trim().to_string());
    let trimmed = line_text.trim();
    let key_here = if trimmed.starts_with('[') {
        None
    } else {
        trimmed.split('=').next().map(|k| k.trim().trim_matches('"').to_string()).filter(|k| !k.is_empty())
    };
    let missing = reason
        .strip_prefix("missing field `")
        .and_then(|r| r.split('`').next())
        .map(str::to_string);
    let (key, line) = if let Some(field) = missing {
        let base = if trimmed.starts_with('[') {
            Some(trimmed.trim_matches(|c| c == '[' || c == ']').trim().to_string())
        } else {
            table.clone()
        };
        (Some(join_key(base.as_deref(), &field)), Some(line_no))
    } else {
        (key_here.map(|k| join_key(table.as_deref(), &k)), Some(line_no))
    };
    ConfigError { file: file.into(), line, key, reason }
}

fn join_key(table: Option<&str>, key: &str) -> String {
    match table {
        Some(t) if !t.is_empty() => format!("{t}.{key}"),
        _ => key.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_a_fresh_machine() {
        let c = Config::defaults();
        assert_eq!(c.server.bind_addr.to_string(), "127.0.0.1:3000");
        assert_eq!(c.public_url(), "http://127.0.0.1:3000");
        assert_eq!(c.auth.issuer, "http://127.0.0.1:3000/auth");
        assert_eq!(c.backend.kind, BackendType::Sqlite);
        assert_eq!(c.backend.data_dir, PathBuf::from("./data"));
        assert_eq!(c.auto_enable_modules, vec!["auth".to_string()]);
    }

    #[test]
    fn unknown_key_names_key_and_line() {
        let e = Config::from_toml_str("[server]\nbnd_addr = \"x\"\n", None).err();
        let e = e.map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains(":2: server.bnd_addr: unknown field"), "{e}");
    }

    #[test]
    fn wrong_type_names_key_and_line() {
        let e = Config::from_toml_str("\n[server]\nmax_body_bytes = \"big\"\n", None).err();
        let e = e.map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains(":3: server.max_body_bytes:"), "{e}");
    }

    #[test]
    fn postgres_needs_url() {
        let e = Config::from_toml_str("[backend]\ntype = \"postgres\"\n", None).err();
        let e = e.map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("backend.url: missing required value"), "{e}");
    }

    /// The keys a table accepts, read from serde's own "expected one of" message, so the list
    /// is derived from the structs above and never written twice.
    fn accepted_keys(table: &str) -> Vec<String> {
        let doc = if table.is_empty() { "zz_unknown = 1\n".to_string() } else { format!("[{table}]\nzz_unknown = 1\n") };
        let msg = Config::from_toml_str(&doc, None).err().map(|e| e.reason).unwrap_or_default();
        let list = msg.split("expected").nth(1).unwrap_or_default(); // "one of `a`, `b`", "`a` or `b`", "`a`"
        list.split('`').skip(1).step_by(2).map(str::to_string).collect()
    }

    #[test]
    fn example_documents_every_key() {
        let text = include_str!("../../engine.toml.example");
        let example: toml::Table = toml::from_str(text).unwrap_or_default();
        let mut checked = 0;
        for table in [
            "",
            "server",
            "backend",
            "auth",
            "auth.passkey",
            "auth.oidc_provider",
            "auth.password",
            "auth.session",
            "auth.registration",
            "auth.brute_force",
            "auth.smtp",
            "flows",
            "templates",
            "log",
        ] {
            let mut node = &example;
            for part in table.split('.').filter(|p| !p.is_empty()) {
                node = node.get(part).and_then(|v| v.as_table()).unwrap_or_else(|| unreachable_table(table));
            }
            let keys = accepted_keys(table);
            assert!(!keys.is_empty(), "no keys found for [{table}]");
            for key in keys {
                assert!(node.contains_key(&key), "engine.toml.example does not document {table}.{key}");
                checked += 1;
            }
        }
        assert!(checked > 20);
    }

    #[allow(clippy::panic)]
    fn unreachable_table(t: &str) -> &'static toml::Table {
        panic!("engine.toml.example has no [{t}] table")
    }

    #[test]
    fn trusted_proxies_and_forwarded_header() {
        let c = Config::from_toml_str("[server]\ntrusted_proxies = [\"127.0.0.1\", \"10.0.0.0/8\", \"2001:db8::/32\"]\nforwarded_header = \"forwarded\"\n", None);
        let c = c.map_err(|e| e.to_string());
        assert!(c.as_ref().is_ok_and(|c| c.server.trusted_proxies.len() == 3 && c.server.forwarded_header == ForwardedHeader::Forwarded), "{c:?}");
        assert!(Config::defaults().server.trusted_proxies.is_empty());
        assert_eq!(Config::defaults().server.forwarded_header, ForwardedHeader::XForwardedFor);
        let e = Config::from_toml_str("[server]\n\ntrusted_proxies = [\"10.0.0.0/8\", \"10.0.0.0/40\"]\n", None).err();
        let e = e.map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains(":3: server.trusted_proxies: \"10.0.0.0/40\": the prefix length must be 0 to 32"), "{e}");
        let e = Config::from_toml_str("[server]\ntrusted_proxies = [\"proxy.internal\"]\n", None).err();
        assert!(e.map(|e| e.to_string()).unwrap_or_default().contains("is not an IP address or CIDR network"));
        let e = Config::from_toml_str("[server]\nforwarded_header = \"x-real-ip\"\n", None).err();
        assert!(e.map(|e| e.to_string()).unwrap_or_default().contains("server.forwarded_header"));
    }

    #[test]
    fn hsts_only_over_https() {
        assert_eq!(Config::defaults().hsts(), None);
        let https = |extra: &str| Config::from_toml_str(&format!("[server]\npublic_url = \"https://id.example.com\"\n{extra}"), None).map(|c| c.hsts()).map_err(|e| e.to_string());
        assert_eq!(https("").ok().flatten().as_deref(), Some("max-age=31536000"));
        assert_eq!(https("hsts_max_age_secs = 600\nhsts_include_subdomains = true\n").ok().flatten().as_deref(), Some("max-age=600; includeSubDomains"));
        assert_eq!(https("hsts_max_age_secs = 0\n").ok().flatten(), None);
        assert!(https("hsts_max_age_secs = 999999999999\n").is_err());
    }

    #[test]
    fn env_expansion() {
        std::env::set_var("ASSAY_CFG_TEST_HOST", "auth.example.com");
        assert_eq!(
            expand_env("https://${ASSAY_CFG_TEST_HOST}/x$$y").ok().as_deref(),
            Some("https://auth.example.com/x$y")
        );
        assert!(expand_env("${ASSAY_CFG_TEST_NOT_SET_ANYWHERE}").is_err());
    }
}
