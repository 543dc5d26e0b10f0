//! `engine.toml`: every key declared once here (`config_section!`: name, type, default, doc;
//! secret when its type is [`Secret`] or [`SecretUrl`], which print as `***`).
//! `engine.toml.example` documents the same keys; tests hold it to [`SECTIONS`] (every key,
//! in its table, with its default) and load it, so the two never disagree.
//!
//! Errors name the key and the line (`engine.toml:7: backend.url: ...`) and the CLI exits
//! with code 2 on them. String values may read the environment with `${VAR}`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer};
use toml::Spanned;
use url::Url;

use crate::net::{Cidr, ForwardedHeader};

/// The modules an engine knows, by the names `auto_enable_modules` and `assay-engine modules`
/// take. Declared here, with the keys that name them, so the config needs nothing above it.
pub const MODULES: &[&str] = &["auth"];

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
            let value = std::env::var(name).map_err(|_| format!("environment variable `{name}` is not set"))?;
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

// ---- secrets ----

/// A secret from the config file (a key, a pepper, a password). `Debug` and `Display` print
/// `***`, so a config printed whole, logged or shown by `check-config` never carries one; the
/// value is read with an explicit [`Secret::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The secret itself: only where it is used, never to print.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// A connection URL that may carry a password (`postgres://user:pw@host/db`). It prints with
/// the password as `***` (the whole URL as `***` if it does not parse); [`SecretUrl::expose`]
/// gives the URL to connect with.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretUrl(String);

impl SecretUrl {
    pub fn new(value: impl Into<String>) -> SecretUrl {
        SecretUrl(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The URL with its password, if any, replaced by `***`.
    pub fn redacted(&self) -> String {
        match Url::parse(&self.0) {
            Ok(mut url) => {
                if url.password().is_some() && url.set_password(Some("***")).is_err() {
                    return "***".into();
                }
                url.to_string()
            }
            Err(_) => "***".into(),
        }
    }
}

impl std::fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.redacted())
    }
}

impl std::fmt::Display for SecretUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted())
    }
}

// ---- keys: one declaration each (type, default, doc, secret) ----

/// A type a key can have: what the file holds (`Raw`, deserialized by serde) and how it
/// becomes the value the engine runs on. A key is secret exactly when its type is.
pub trait ConfigValue: Sized {
    type Raw: serde::de::DeserializeOwned;
    const SECRET: bool = false;
    fn from_raw(raw: Self::Raw) -> Result<Self, String>;
}

macro_rules! plain_config_value {
    ($($t:ty),*) => {$(
        impl ConfigValue for $t {
            type Raw = $t;
            fn from_raw(raw: $t) -> Result<$t, String> {
                Ok(raw)
            }
        }
    )*};
}
plain_config_value!(bool, u16, u32, u64, usize, BackendType, SmtpTls, LogFormat);

impl ConfigValue for String {
    type Raw = EnvString;
    fn from_raw(raw: EnvString) -> Result<String, String> {
        Ok(raw.0)
    }
}

impl ConfigValue for PathBuf {
    type Raw = EnvString;
    fn from_raw(raw: EnvString) -> Result<PathBuf, String> {
        Ok(PathBuf::from(raw.0))
    }
}

impl ConfigValue for Secret {
    type Raw = EnvString;
    const SECRET: bool = true;
    fn from_raw(raw: EnvString) -> Result<Secret, String> {
        Ok(Secret(raw.0))
    }
}

impl ConfigValue for SecretUrl {
    type Raw = EnvString;
    const SECRET: bool = true;
    fn from_raw(raw: EnvString) -> Result<SecretUrl, String> {
        Ok(SecretUrl(raw.0))
    }
}

impl ConfigValue for SocketAddr {
    type Raw = EnvString;
    fn from_raw(raw: EnvString) -> Result<SocketAddr, String> {
        parse_bind(&raw.0)
    }
}

impl ConfigValue for Url {
    type Raw = EnvString;
    fn from_raw(raw: EnvString) -> Result<Url, String> {
        parse_base_url(&raw.0)
    }
}

impl ConfigValue for Cidr {
    type Raw = EnvString;
    fn from_raw(raw: EnvString) -> Result<Cidr, String> {
        Cidr::parse(&raw.0)
    }
}

impl ConfigValue for ForwardedHeader {
    type Raw = EnvString;
    fn from_raw(raw: EnvString) -> Result<ForwardedHeader, String> {
        ForwardedHeader::parse(&raw.0)
    }
}

impl<T: ConfigValue> ConfigValue for Vec<T> {
    type Raw = Vec<T::Raw>;
    const SECRET: bool = T::SECRET;
    fn from_raw(raw: Vec<T::Raw>) -> Result<Vec<T>, String> {
        raw.into_iter().map(T::from_raw).collect()
    }
}

/// A key with no default: absent is `None`.
impl<T: ConfigValue> ConfigValue for Option<T> {
    type Raw = T::Raw;
    const SECRET: bool = T::SECRET;
    fn from_raw(raw: T::Raw) -> Result<Option<T>, String> {
        T::from_raw(raw).map(Some)
    }
}

/// One key as declared: the table [`SECTIONS`] lists them all, for the example's test and
/// for anything that documents the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeySpec {
    pub name: &'static str,
    /// The Rust type it resolves to.
    pub ty: &'static str,
    /// The default as a TOML value, when it is a constant (`None`: no value, or one computed
    /// from other keys; the doc says which).
    pub default: Option<&'static str>,
    pub doc: &'static str,
    pub secret: bool,
}

/// Every table of the file (`""`: the top level) with its keys.
pub const SECTIONS: &[(&str, &[KeySpec])] = &[
    ("", ROOT_KEYS),
    ("server", RawServer::KEYS),
    ("backend", RawBackend::KEYS),
    ("auth", RawAuth::KEYS),
    ("auth.passkey", RawPasskey::KEYS),
    ("auth.oidc_provider", RawOidcProvider::KEYS),
    ("auth.password", RawPassword::KEYS),
    ("auth.session", RawSession::KEYS),
    ("auth.registration", RawRegistration::KEYS),
    ("auth.brute_force", RawBruteForce::KEYS),
    ("auth.smtp", RawSmtp::KEYS),
    ("flows", RawFlows::KEYS),
    ("templates", RawTemplates::KEYS),
    ("log", RawLog::KEYS),
];

/// Builds a configuration error at a place: the span of the value (for its line), the key, why.
type At<'a> = dyn Fn(Option<std::ops::Range<usize>>, &str, String) -> ConfigError + 'a;

#[derive(Deserialize)]
struct OneValue<R> {
    v: R,
}

/// One key's value from the file, else its constant default (written as TOML in the
/// declaration and read like a value from the file), else `None`.
fn take_key<T: ConfigValue>(
    raw: Option<Spanned<T::Raw>>,
    parse: fn(T::Raw) -> Result<T, String>,
    default: Option<&str>,
    at: &At<'_>,
    key: &dyn Fn() -> String,
) -> Result<Option<T>, ConfigError> {
    match (raw, default) {
        (Some(s), _) => {
            let span = s.span();
            parse(s.into_inner()).map(Some).map_err(|r| at(Some(span), &key(), r))
        }
        (None, Some(lit)) => toml::from_str::<OneValue<T::Raw>>(&format!("v = {lit}"))
            .map_err(|e| e.message().to_string())
            .and_then(|one| parse(one.v))
            .map(Some)
            .map_err(|r| at(None, &key(), format!("built-in default {lit} is invalid: {r}"))),
        (None, None) => Ok(None),
    }
}

/// Declares one table of the file, each key once:
///
/// ```text
/// /// doc
/// name: Type = <TOML value>,          // a constant default
/// name: Type => <expression>,         // a default computed from other keys or the arguments
/// name: Type,                         // no default: `Option<_>` (absent is None) or `Vec<_>`
/// name("toml_name"): Type ...         // a key whose TOML name is not a Rust identifier
/// name: Type [parser] ...             // a parser other than `ConfigValue::from_raw`
/// ```
///
/// followed by `sub` tables (`sub raw_name: RawType => field: Type = <expression>`). From it
/// come the serde struct of the file (`$Raw`, every key optional and spanned), the resolved
/// struct (`$Resolved`), `$Raw::KEYS`, and `$Raw::resolve(self, at, args...)`, which fills
/// in defaults; constant defaults first, then computed ones, then sub-tables, so a computed
/// default may use any constant key of its table. Checks that relate keys stay by hand.
macro_rules! config_section {
    (
        $section:literal, $Raw:ident => $Resolved:ident, resolve($at:ident $(, $arg:ident: $argty:ty)*) {
            $(
                $(#[doc = $doc:literal])+
                $field:ident $(($name:literal))? : $ty:ty $([$parse:path])? $(= $default:tt)? $(=> $computed:expr)?,
            )*
            $(
                sub $sraw:ident: $SRaw:ty => $sfield:ident: $SRes:ty = $sexpr:expr,
            )*
        }
    ) => {
        #[derive(Default, Deserialize)]
        #[serde(deny_unknown_fields)]
        struct $Raw {
            $(
                $(#[serde(rename = $name)])?
                $field: Option<Spanned<<$ty as ConfigValue>::Raw>>,
            )*
            $(
                #[serde(default)]
                $sraw: $SRaw,
            )*
        }

        #[derive(Debug, Clone)]
        pub struct $Resolved {
            $(
                $(#[doc = $doc])+
                pub $field: $ty,
            )*
            $(
                pub $sfield: $SRes,
            )*
        }

        impl $Raw {
            const KEYS: &'static [KeySpec] = &[$(
                KeySpec {
                    name: config_section!(@name $field $($name)?),
                    ty: stringify!($ty),
                    default: config_section!(@default $($default)?),
                    doc: concat!($($doc),+),
                    secret: <$ty as ConfigValue>::SECRET,
                },
            )*];

            #[allow(unused_variables)]
            fn resolve(self, $at: &At<'_> $(, $arg: $argty)*) -> Result<$Resolved, ConfigError> {
                let $Raw { $($field,)* $($sraw,)* } = self;
                $(
                    let $field: Option<$ty> = take_key::<$ty>(
                        $field,
                        config_section!(@parse $ty $(, $parse)?),
                        config_section!(@default $($default)?),
                        $at,
                        &|| format!("{}.{}", $section, config_section!(@name $field $($name)?)),
                    )?;
                )*
                $(config_section!(@constant $at, $section, $field $($name)?, $ty, [$($default)?]);)*
                $(config_section!(@computed $field, $ty, [$($default)?], [$($computed)?]);)*
                $(let $sfield: $SRes = $sexpr;)*
                Ok($Resolved { $($field,)* $($sfield,)* })
            }
        }
    };
    (@name $field:ident) => { stringify!($field) };
    (@name $field:ident $name:literal) => { $name };
    (@default) => { None };
    (@default $default:tt) => { Some(stringify!($default)) };
    (@parse $ty:ty) => { <$ty as ConfigValue>::from_raw };
    (@parse $ty:ty, $parse:path) => { $parse };
    (@constant $at:ident, $section:literal, $field:ident $($name:literal)?, $ty:ty, [$default:tt]) => {
        let $field: $ty = match $field {
            Some(v) => v,
            None => return Err($at(None, &format!("{}.{}", $section, config_section!(@name $field $($name)?)), "has no value".into())),
        };
    };
    (@constant $at:ident, $section:literal, $field:ident $($name:literal)?, $ty:ty, []) => {};
    (@computed $field:ident, $ty:ty, [$default:tt], []) => {};
    (@computed $field:ident, $ty:ty, [], [$computed:expr]) => {
        let $field: $ty = match $field {
            Some(v) => v,
            None => $computed,
        };
    };
    (@computed $field:ident, $ty:ty, [], []) => {
        let $field: $ty = $field.unwrap_or_default();
    };
}

// ---- the tables ----

/// `auto_enable_modules`, the one key outside a table.
const AUTO_ENABLE_MODULES: KeySpec = KeySpec {
    name: "auto_enable_modules",
    ty: "Vec<String>",
    default: Some("[\"auth\"]"),
    doc: " Modules switched on at first start (rows in engine.modules).",
    secret: false,
};
const ROOT_KEYS: &[KeySpec] = &[AUTO_ENABLE_MODULES];

/// The file as written: the top level. Every key of the tables is declared once, below.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    auto_enable_modules: Option<Spanned<Vec<EnvString>>>,
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

config_section! {
    "server", RawServer => ServerConfig, resolve(at) {
        /// Address and port to listen on.
        bind_addr: SocketAddr = "127.0.0.1:3000",
        /// The URL people and apps reach the engine at (default `http://{bind_addr}`).
        public_url: Url => default_public_url(bind_addr),
        /// Largest request body accepted, in bytes.
        max_body_bytes: u64 = 1048576,
        /// Seconds a client may take to send its request headers.
        header_read_timeout_secs: u64 = 10,
        /// Seconds a client may take to send a request body (at least 1).
        body_read_timeout_secs: u64 = 30,
        /// Seconds an idle keep-alive connection stays open.
        idle_timeout_secs: u64 = 60,
        /// On SIGTERM/SIGINT, seconds in-flight requests get to finish.
        shutdown_grace_secs: u64 = 30,
        /// Peers whose forwarding header is believed (empty: none, the TCP peer is the client).
        trusted_proxies: Vec<Cidr> = [],
        /// The one header those proxies write the client's address into.
        forwarded_header: ForwardedHeader = "x-forwarded-for",
        /// `Strict-Transport-Security: max-age` when the public URL is https (0: no header).
        hsts_max_age_secs: u64 = 31536000,
        /// Add `includeSubDomains` to that header.
        hsts_include_subdomains: bool = false,
    }
}

config_section! {
    "backend", RawBackend => BackendConfig, resolve(at) {
        /// "sqlite" or "postgres".
        kind("type"): BackendType = "sqlite",
        /// PostgreSQL connection URL; required when type = "postgres".
        url: Option<SecretUrl>,
        /// Where SQLite keeps its files and the first admin key is written.
        data_dir: PathBuf = "./data",
        /// Connections in the pool (at least 1).
        max_connections: u32 = 10,
    }
}

config_section! {
    "auth", RawAuth => AuthConfig, resolve(at, public_url: &Url, host: &str) {
        /// The OpenID Connect issuer (default `{public_url}/auth`), kept as written minus a
        /// trailing slash: relying parties compare it byte for byte.
        issuer: String [parse_issuer] => format!("{}/auth", public_url.as_str().trim_end_matches('/')),
        /// Admin API keys, at least 16 characters each (none: one is generated at first start).
        admin_api_keys: Vec<Secret> = [],
        /// The master secret. `None`: generated into `{data_dir}/master-key` on first start.
        master_key: Option<Secret>,
        sub passkey: RawPasskey => passkey: PasskeyConfig = passkey.resolve(at, host)?,
        sub oidc_provider: RawOidcProvider => oidc_provider: OidcProviderConfig = oidc_provider.resolve(at)?,
        sub password: RawPassword => password: PasswordConfig = password.checked(at)?,
        sub session: RawSession => session: SessionConfig = session.checked(at)?,
        sub registration: RawRegistration => registration_enabled: bool = registration.resolve(at)?.enabled,
        sub brute_force: RawBruteForce => brute_force: BruteForceConfig = brute_force.checked(at)?,
        sub smtp: Option<Spanned<RawSmtp>> => smtp: Option<SmtpConfig> = resolve_smtp(smtp, at, host)?,
    }
}

config_section! {
    "auth.passkey", RawPasskey => PasskeyConfig, resolve(at, host: &str) {
        /// WebAuthn relying-party id (default: the host of public_url).
        rp_id: String => host.to_string(),
        /// Name shown by authenticators.
        rp_name: String = "assay-engine",
    }
}

config_section! {
    "auth.oidc_provider", RawOidcProvider => OidcProviderConfig, resolve(at) {
        /// Serve the OpenID Connect provider endpoints.
        enabled: bool = true,
        /// Active signing keys older than this are rotated by the engine (0: only on demand).
        key_rotation_days: u64 = 90,
        /// Retired keys are unpublished and deleted this long after retirement (0: kept).
        key_retention_days: u64 = 30,
        /// How long an authorization code can be exchanged.
        code_ttl_secs: u64 = 60,
        /// Lifetime of access tokens.
        access_token_ttl_secs: u64 = 3600,
        /// Lifetime of ID tokens.
        id_token_ttl_secs: u64 = 3600,
        /// Lifetime of a refresh token.
        refresh_token_ttl_secs: u64 = 2592000,
        /// A spent refresh token still works this long (two tabs refreshing at once); a reuse
        /// after it revokes the token's whole family.
        refresh_grace_secs: u64 = 5,
        /// How long a parked authorization request waits for the login and consent flows.
        request_ttl_secs: u64 = 1800,
    }
}

config_section! {
    "auth.password", RawPassword => PasswordConfig, resolve(at) {
        /// Pepper mixed into every Argon2id hash. `None`: derived from the master key.
        pepper: Option<Secret>,
        /// Argon2id memory, in KiB (OWASP's minimum: 19 MiB).
        memory_kib: u32 = 19456,
        /// Argon2id passes.
        iterations: u32 = 2,
        /// Argon2id lanes.
        parallelism: u32 = 1,
        /// `None`: sized from the CPUs and the memory at start-up.
        max_concurrent_hashes: Option<usize>,
        /// Hashes that may wait for a thread; past that a request is answered 503 at once.
        /// `None`: 16 per hashing thread.
        max_queued_hashes: Option<usize>,
        /// Shortest password accepted.
        min_length: usize = 8,
    }
}

config_section! {
    "auth.session", RawSession => SessionConfig, resolve(at) {
        /// The session cookie's name (before any `__Host-` prefix).
        cookie_name: String = "assay_session",
        /// Absolute lifetime of a session, in seconds.
        ttl_secs: u64 = 2592000,
        /// A session unused this long expires.
        idle_timeout_secs: u64 = 604800,
    }
}

config_section! {
    "auth.registration", RawRegistration => RegistrationConfig, resolve(at) {
        /// Serve self-service sign-up at /auth/register.
        enabled: bool = false,
    }
}

config_section! {
    "auth.brute_force", RawBruteForce => BruteForceConfig, resolve(at) {
        /// Failed logins per account before each further attempt is delayed.
        free_failures: u32 = 3,
        /// Failures per account that lock it for lockout_secs.
        max_failures: u32 = 10,
        /// Failures from one client IP that lock that IP for lockout_secs.
        ip_max_failures: u32 = 100,
        /// How long a lock lasts, in seconds.
        lockout_secs: u64 = 900,
        /// Failures older than this many seconds are forgotten.
        window_secs: u64 = 900,
        /// Recovery requests per hour from one client IP (answered 429 past it).
        recovery_per_ip: u32 = 20,
        /// Recovery mails and registration notices per hour to one address (past it the mail
        /// is skipped, the page is the same).
        mails_per_address: u32 = 5,
        /// Registration attempts per hour from one client IP.
        registration_per_ip: u32 = 20,
    }
}

config_section! {
    "auth.smtp", RawSmtp => SmtpConfig, resolve(at, span: std::ops::Range<usize>, public_host: &str) {
        /// The SMTP server (required).
        host: String => return Err(at(Some(span), "auth.smtp.host", "missing required value".into())),
        /// Default: 465 for tls, 587 for starttls, 25 for none.
        port: u16 => match tls {
            SmtpTls::Tls => 465,
            SmtpTls::Starttls => 587,
            SmtpTls::None => 25,
        },
        /// How the connection is secured.
        tls: SmtpTls = "starttls",
        /// Login name; goes with password.
        username: Option<String>,
        /// Login password; goes with username.
        password: Option<Secret>,
        /// The From header (default `assay <no-reply@{public_url host}>`).
        from: String => format!("assay <no-reply@{public_host}>"),
        /// Seconds to wait for the server (at least 1).
        timeout_secs: u64 = 15,
    }
}

config_section! {
    "flows", RawFlows => FlowsConfig, resolve(at) {
        /// A folder of .lua flows overriding and adding to the bundled ones.
        dir: Option<PathBuf>,
        /// Wall-clock budget of one flow run, in milliseconds (at least 1).
        budget_ms: u64 = 5000,
        /// Memory one Lua state may use, in MiB (at least 1).
        memory_limit_mb: u64 = 64,
        /// Idle Lua states kept for reuse.
        pool_size: usize = 64,
    }
}

impl FlowsConfig {
    /// The memory ceiling of one Lua state, in bytes.
    pub fn memory_limit_bytes(&self) -> usize {
        (self.memory_limit_mb as usize).saturating_mul(1024 * 1024)
    }
}

config_section! {
    "templates", RawTemplates => TemplatesConfig, resolve(at) {
        /// A folder of minijinja templates overriding the bundled ones by file name.
        dir: Option<PathBuf>,
    }
}

config_section! {
    "log", RawLog => LogConfig, resolve(at) {
        /// tracing filter (RUST_LOG, when set, wins).
        level: String = "info",
        /// "text" or "json".
        format: LogFormat = "text",
    }
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
        let mut server = raw.server.resolve(&at)?;
        server.body_read_timeout_secs = server.body_read_timeout_secs.max(1);
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
        let mut backend = raw_backend.resolve(&at)?;
        backend.max_connections = backend.max_connections.max(1);
        if backend.kind == BackendType::Postgres {
            match &backend.url {
                None => {
                    return Err(at(
                        backend_span,
                        "backend.url",
                        "missing required value (required when backend.type = \"postgres\")".into(),
                    ))
                }
                Some(u) if !(u.expose().starts_with("postgres://") || u.expose().starts_with("postgresql://")) => {
                    return Err(at(backend_span, "backend.url", "must be a postgres:// or postgresql:// URL".into()))
                }
                Some(_) => {}
            }
        }

        // [auth]
        let host = server.public_url.host_str().unwrap_or("localhost").to_string();
        let auth = raw.auth.resolve(&at, &server.public_url, &host)?;
        if auth.master_key.as_ref().is_some_and(|k| k.expose().len() < 32) {
            return Err(at(None, "auth.master_key", "must be at least 32 characters (use 64 hex digits)".into()));
        }
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
                return Err(at(
                    None,
                    "auth.oidc_provider.refresh_grace_secs",
                    "must be at most 300: a grace window is for concurrent refreshes, not a second lifetime".into(),
                ));
            }
        }
        if auth.admin_api_keys.iter().any(|k| k.expose().len() < 16) {
            return Err(at(None, "auth.admin_api_keys", "every key must be at least 16 characters".into()));
        }

        let mut flows = raw.flows.resolve(&at)?;
        flows.budget_ms = flows.budget_ms.max(1);
        flows.memory_limit_mb = flows.memory_limit_mb.max(1);
        let templates = raw.templates.resolve(&at)?;
        let log = raw.log.resolve(&at)?;
        let modules = take_key::<Vec<String>>(raw.auto_enable_modules, <Vec<String>>::from_raw, AUTO_ENABLE_MODULES.default, &at, &|| {
            AUTO_ENABLE_MODULES.name.to_string()
        })?
        .unwrap_or_default();
        for m in &modules {
            if !MODULES.contains(&m.as_str()) {
                return Err(at(None, "auto_enable_modules", format!("unknown module {m:?} (known: {})", MODULES.join(", "))));
            }
        }

        Ok(Config { source: path.map(Path::to_path_buf), auto_enable_modules: modules, server, backend, auth, flows, templates, log })
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

/// `[auth] issuer`: a base URL, kept as written (minus a trailing slash): RPs compare it byte
/// for byte.
fn parse_issuer(raw: EnvString) -> Result<String, String> {
    let url = parse_base_url(&raw.0)?;
    Ok(url.as_str().trim_end_matches('/').to_string())
}

impl RawPassword {
    fn checked(self, at: &At<'_>) -> Result<PasswordConfig, ConfigError> {
        let c = self.resolve(at)?;
        check_password(&c).map_err(|(key, r)| at(None, &key, r))?;
        Ok(c)
    }
}

fn check_password(c: &PasswordConfig) -> Result<(), (String, String)> {
    let bad = |k: &str, r: &str| Err((format!("auth.password.{k}"), r.to_string()));
    if c.pepper.as_ref().is_some_and(|p| p.expose().len() < 16) {
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
    Ok(())
}

impl RawSession {
    fn checked(self, at: &At<'_>) -> Result<SessionConfig, ConfigError> {
        let c = self.resolve(at)?;
        check_session(&c).map_err(|(key, r)| at(None, &key, r))?;
        Ok(c)
    }
}

fn check_session(c: &SessionConfig) -> Result<(), (String, String)> {
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
    Ok(())
}

impl RawBruteForce {
    fn checked(self, at: &At<'_>) -> Result<BruteForceConfig, ConfigError> {
        let c = self.resolve(at)?;
        check_brute_force(&c).map_err(|(key, r)| at(None, &key, r))?;
        Ok(c)
    }
}

fn check_brute_force(c: &BruteForceConfig) -> Result<(), (String, String)> {
    if c.recovery_per_ip == 0 || c.mails_per_address == 0 || c.registration_per_ip == 0 {
        return Err((
            "auth.brute_force.recovery_per_ip".into(),
            "recovery_per_ip, mails_per_address and registration_per_ip must be positive".into(),
        ));
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
    Ok(())
}

/// `[auth.smtp]`, when present: every error names the table's line.
fn resolve_smtp(raw: Option<Spanned<RawSmtp>>, at: &At<'_>, public_host: &str) -> Result<Option<SmtpConfig>, ConfigError> {
    let Some(raw) = raw else { return Ok(None) };
    let span = raw.span();
    let mut c = raw.into_inner().resolve(at, span.clone(), public_host)?;
    c.timeout_secs = c.timeout_secs.max(1);
    check_smtp(&c).map_err(|(key, r)| at(Some(span), &key, r))?;
    Ok(Some(c))
}

fn check_smtp(c: &SmtpConfig) -> Result<(), (String, String)> {
    if c.username.is_some() != c.password.is_some() {
        return Err(("auth.smtp.username".into(), "username and password go together".into()));
    }
    if c.from.parse::<lettre::message::Mailbox>().is_err() {
        return Err(("auth.smtp.from".into(), format!("{:?} is not a mailbox (\"Name <addr@host>\")", c.from)));
    }
    Ok(())
}

#[allow(clippy::panic)]
fn unreachable_config(e: ConfigError) -> ! {
    // Only reachable if a built-in default were invalid: a programming error caught by tests.
    panic!("built-in default configuration is invalid: {e}")
}

fn parse_bind(s: &str) -> Result<SocketAddr, String> {
    s.parse::<SocketAddr>().map_err(|_| format!("{s:?} is not an address of the form HOST:PORT (for example 0.0.0.0:3000)"))
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
    let missing = reason.strip_prefix("missing field `").and_then(|r| r.split('`').next()).map(str::to_string);
    let (key, line) = if let Some(field) = missing {
        let base =
            if trimmed.starts_with('[') { Some(trimmed.trim_matches(|c| c == '[' || c == ']').trim().to_string()) } else { table.clone() };
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
pub(crate) mod tests {
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
        let c = Config::from_toml_str(
            "[server]\ntrusted_proxies = [\"127.0.0.1\", \"10.0.0.0/8\", \"2001:db8::/32\"]\nforwarded_header = \"forwarded\"\n",
            None,
        );
        let c = c.map_err(|e| e.to_string());
        assert!(
            c.as_ref().is_ok_and(|c| c.server.trusted_proxies.len() == 3 && c.server.forwarded_header == ForwardedHeader::Forwarded),
            "{c:?}"
        );
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
        let https = |extra: &str| {
            Config::from_toml_str(&format!("[server]\npublic_url = \"https://id.example.com\"\n{extra}"), None)
                .map(|c| c.hsts())
                .map_err(|e| e.to_string())
        };
        assert_eq!(https("").ok().flatten().as_deref(), Some("max-age=31536000"));
        assert_eq!(
            https("hsts_max_age_secs = 600\nhsts_include_subdomains = true\n").ok().flatten().as_deref(),
            Some("max-age=600; includeSubDomains")
        );
        assert_eq!(https("hsts_max_age_secs = 0\n").ok().flatten(), None);
        assert!(https("hsts_max_age_secs = 999999999999\n").is_err());
    }

    /// A config with every secret set, the backend URL's password included.
    pub(crate) const ALL_SECRETS: &str = r#"
[backend]
type = "postgres"
url = "postgres://assay:pg-password-31337@db.internal/assay"
[auth]
admin_api_keys = ["admin-key-0123456789-alpha", "admin-key-0123456789-beta"]
master_key = "master-key-0123456789abcdef0123456789abcdef"
[auth.password]
pepper = "pepper-0123456789abcdef"
[auth.smtp]
host = "smtp.example.com"
username = "mailer"
password = "smtp-password-31337"
"#;
    pub(crate) const THE_SECRETS: &[&str] = &[
        "pg-password-31337",
        "admin-key-0123456789-alpha",
        "admin-key-0123456789-beta",
        "master-key-0123456789abcdef0123456789abcdef",
        "pepper-0123456789abcdef",
        "smtp-password-31337",
    ];

    #[test]
    fn secrets_never_print() {
        let c = Config::from_toml_str(ALL_SECRETS, None).map_err(|e| e.to_string());
        assert!(c.is_ok(), "{c:?}");
        let Ok(c) = c else { return };
        for text in [format!("{c:?}"), format!("{c:#?}"), format!("{:?}", c.backend.url), format!("{:?}", c.auth.smtp)] {
            for secret in THE_SECRETS {
                assert!(!text.contains(secret), "{secret} printed in {text}");
            }
        }
        assert!(format!("{c:?}").contains("***"));
        // The URL prints without its password; the engine still connects with it.
        let url = c.backend.url.clone().unwrap_or_else(|| SecretUrl::new(""));
        assert_eq!(url.to_string(), "postgres://assay:***@db.internal/assay");
        assert_eq!(url.expose(), "postgres://assay:pg-password-31337@db.internal/assay");
        assert_eq!(SecretUrl::new("not a url: secret").to_string(), "***");
        assert_eq!(SecretUrl::new("postgres://db/assay").to_string(), "postgres://db/assay");
        assert_eq!(format!("{}", Secret::new("x")), "***");
        assert_eq!(c.auth.master_key.as_ref().map(Secret::expose), Some("master-key-0123456789abcdef0123456789abcdef"));
        assert_eq!(c.auth.password.pepper.as_ref().map(Secret::expose), Some("pepper-0123456789abcdef"));
        assert_eq!(
            c.auth.admin_api_keys.iter().map(Secret::expose).collect::<Vec<_>>(),
            ["admin-key-0123456789-alpha", "admin-key-0123456789-beta"]
        );
        assert_eq!(c.auth.smtp.as_ref().and_then(|s| s.password.as_ref()).map(Secret::expose), Some("smtp-password-31337"));
    }

    #[test]
    fn secret_keys_are_exactly_the_secrets() {
        let secret: Vec<String> = SECTIONS
            .iter()
            .flat_map(|(table, keys)| keys.iter().filter(|k| k.secret).map(move |k| format!("{table}.{}", k.name)))
            .collect();
        assert_eq!(secret, ["backend.url", "auth.admin_api_keys", "auth.master_key", "auth.password.pepper", "auth.smtp.password"]);
    }

    /// The declared keys (plus sub-tables) are exactly what serde accepts, table by table: the
    /// one key declared outside the macro cannot drift either.
    #[test]
    fn declared_keys_are_the_accepted_keys() {
        for (table, keys) in SECTIONS {
            let mut declared: Vec<String> = keys.iter().map(|k| k.name.to_string()).collect();
            let prefix = if table.is_empty() { String::new() } else { format!("{table}.") };
            declared.extend(
                SECTIONS
                    .iter()
                    .filter_map(|(t, _)| t.strip_prefix(&prefix))
                    .filter(|rest| !rest.is_empty() && !rest.contains('.'))
                    .map(str::to_string),
            );
            let mut accepted = accepted_keys(table);
            declared.sort();
            accepted.sort();
            assert_eq!(declared, accepted, "[{table}]");
        }
    }

    /// Every constant default is a valid value (the empty file exercises all but [auth.smtp]'s).
    #[test]
    fn constant_defaults_resolve() {
        let c = Config::from_toml_str("[auth.smtp]\nhost = \"smtp.example.com\"\n", None).map_err(|e| e.to_string());
        let smtp = c.as_ref().ok().and_then(|c| c.auth.smtp.clone());
        assert_eq!(smtp.as_ref().map(|s| (s.port, s.tls, s.timeout_secs)), Some((587, SmtpTls::Starttls, 15)), "{c:?}");
        assert_eq!(smtp.map(|s| s.from), Some("assay <no-reply@127.0.0.1>".to_string()));
        let e = Config::from_toml_str("[auth.smtp]\nport = 25\n", None).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains(":1: auth.smtp.host: missing required value"), "{e}");
        let c = Config::defaults();
        assert_eq!((c.server.max_body_bytes, c.auth.password.memory_kib, c.auth.session.ttl_secs), (1048576, 19456, 2592000));
    }

    /// `engine.toml.example`, key by key (a key may be commented out, `# key = value`):
    /// (section, key, value as written, the comment lines right above it).
    fn example_keys(text: &str) -> Vec<(String, String, String, Vec<String>)> {
        let mut out = Vec::new();
        let mut section = String::new();
        let mut comments: Vec<String> = Vec::new();
        for line in text.lines().map(str::trim) {
            let commented = line.starts_with('#');
            let body = line.trim_start_matches('#').trim();
            if body.starts_with('[')
                && body.ends_with(']')
                && !body.starts_with("[[")
                && body[1..body.len() - 1].chars().all(|c| c.is_ascii_lowercase() || c == '_' || c == '.')
            {
                section = body[1..body.len() - 1].to_string();
                comments.clear();
                continue;
            }
            let key_value = body.split_once('=').map(|(k, v)| (k.trim(), v.trim()));
            let key_value = key_value.filter(|(k, v)| {
                !k.is_empty()
                    && k.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
                    && toml::from_str::<toml::Table>(&format!("v = {v}")).is_ok()
            });
            match key_value {
                Some((k, v)) => {
                    out.push((section.clone(), k.to_string(), v.to_string(), std::mem::take(&mut comments)));
                }
                None if commented => comments.push(body.to_string()),
                None => comments.clear(),
            }
        }
        out
    }

    fn toml_value(v: &str) -> Option<toml::Value> {
        toml::from_str::<toml::Table>(&format!("v = {v}")).ok().and_then(|mut t| t.remove("v"))
    }

    /// The example and the declarations agree: every declared key is in the example, in its
    /// table; every key of the example is declared; a key shown with a plain value shows its
    /// constant default (unless it reads the environment), and a "Default X" in the comment
    /// above a key states that same default.
    #[test]
    fn example_matches_the_declarations() {
        let text = include_str!("../../engine.toml.example");
        let found = example_keys(text);
        let declared =
            |table: &str, key: &str| SECTIONS.iter().find(|(t, _)| *t == table).and_then(|(_, keys)| keys.iter().find(|k| k.name == key));
        let mut stated = 0;
        for (table, key, value, comments) in &found {
            let Some(spec) = declared(table, key) else {
                panic_at(&format!("engine.toml.example has {key} in [{table}], which is not declared"));
            };
            let Some(default) = spec.default else { continue };
            if !value.contains("${") {
                assert_eq!(
                    toml_value(value),
                    toml_value(default),
                    "engine.toml.example shows [{table}] {key} = {value}, the default is {default}"
                );
            }
            let joined = comments.join(" ");
            for (_, after) in joined.match_indices("Default ").map(|(i, _)| joined.split_at(i + "Default ".len())) {
                let token = after.split_whitespace().next().unwrap_or_default().trim_end_matches(['.', ',', ';', ')']);
                if let Some(v) = toml_value(token) {
                    assert_eq!(
                        Some(v),
                        toml_value(default),
                        "engine.toml.example says [{table}] {key} defaults to {token}, the declaration {default}"
                    );
                    stated += 1;
                }
            }
        }
        for (table, keys) in SECTIONS {
            for k in *keys {
                assert!(
                    found.iter().any(|(t, n, _, _)| t == table && n == k.name),
                    "engine.toml.example does not document [{table}] {}",
                    k.name
                );
            }
        }
        assert!(stated > 20, "only {stated} defaults stated");
    }

    #[allow(clippy::panic)]
    fn panic_at(msg: &str) -> ! {
        panic!("{msg}")
    }

    #[test]
    fn env_expansion() {
        std::env::set_var("ASSAY_CFG_TEST_HOST", "auth.example.com");
        assert_eq!(expand_env("https://${ASSAY_CFG_TEST_HOST}/x$$y").ok().as_deref(), Some("https://auth.example.com/x$y"));
        assert!(expand_env("${ASSAY_CFG_TEST_NOT_SET_ANYWHERE}").is_err());
    }
}
