//! The command line: `serve`, `migrate`, `check-config`, `run`, `modules`, `version`.
//! Exit codes: 0 success, 1 failure at run time, 2 bad configuration or usage.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};

use crate::config::{Config, ConfigError, LogFormat};
use crate::lua::{LuaHost, Shared};
use crate::storage::Db;
use crate::templates::Templates;

#[derive(Parser, Debug)]
#[command(name = "assay-engine", version, about = "A self-hosted identity provider in one binary")]
pub struct Cli {
    /// The config file (TOML). Without one, built-in defaults: 127.0.0.1:3000, SQLite in ./data.
    #[arg(long, short = 'c', global = true, env = "ASSAY_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve HTTP until SIGTERM or SIGINT.
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Check the config file and print the resolved settings.
    CheckConfig,
    /// Run an operator script with the stdlib, the `env` global and an outbound HTTP client.
    Run {
        script: PathBuf,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// List or switch modules (`engine.modules`); running engines follow within seconds.
    Modules {
        #[command(subcommand)]
        action: ModulesAction,
    },
    /// Manage users (bootstrap the first administrator).
    Users {
        #[command(subcommand)]
        action: UsersAction,
    },
    /// List or rotate the OpenID provider's signing keys (`auth.jwks_keys`).
    Keys {
        #[command(subcommand)]
        action: KeysAction,
    },
    /// Print the version.
    Version,
}

#[derive(Subcommand, Debug)]
enum KeysAction {
    /// Every published key: kid, algorithm, status, created.
    List,
    /// Retire the active key of an algorithm (it stays published) and make a new one active.
    Rotate {
        /// RS256 (default), ES256 or EdDSA.
        #[arg(long, default_value = "RS256")]
        alg: String,
    },
}

#[derive(Subcommand, Debug)]
enum UsersAction {
    /// Create a user; with --admin, give it the admin role (the console's login).
    Create {
        #[arg(long)]
        email: String,
        /// Read the password from the first line of standard input (without it the user has no
        /// password and must use recovery).
        #[arg(long)]
        password_stdin: bool,
        #[arg(long)]
        admin: bool,
        #[arg(long)]
        display_name: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
enum ModulesAction {
    List,
    Enable { name: String },
    Disable { name: String },
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Version = cli.command {
        println!("assay-engine {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    let config = match load_config(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: invalid configuration: {e}");
            return ExitCode::from(2);
        }
    };
    init_logging(&config);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(run(cli.command, config));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn load_config(path: Option<&std::path::Path>) -> Result<Config, ConfigError> {
    match path {
        Some(p) => Config::load(p),
        None => Ok(Config::defaults()),
    }
}

async fn run(command: Command, config: Config) -> Result<(), Box<dyn std::error::Error>> {
    match command {
        Command::Serve => crate::server::serve(config).await?,
        Command::Migrate => {
            let db = Db::connect(&config.backend).await?;
            let report = db.migrate().await?;
            for (v, name) in &report.applied {
                println!("applied {v:04} {name}");
            }
            println!("{} applied, {} already current ({})", report.applied.len(), report.already, db.backend_name());
            db.close().await;
        }
        Command::CheckConfig => print_config(&config),
        Command::Run { script, args } => {
            let source = std::fs::read_to_string(&script).map_err(|e| format!("cannot read {}: {e}", script.display()))?;
            let shared = Arc::new(Shared {
                bindings: crate::stdlib::BINDINGS,
                templates: Templates::new(config.templates.dir.as_deref()),
                config: Arc::new(config),
                db: None,
                client: crate::server::http_client()?,
                identity: None,
            });
            let name = script.display().to_string();
            LuaHost::run_script(shared, &name, &source, &args).await?;
        }
        Command::Modules { action } => {
            let db = Db::connect(&config.backend).await?;
            db.migrate().await?;
            match action {
                ModulesAction::List => {
                    for (name, on) in db.modules().await? {
                        println!("{name}\t{}", if on { "enabled" } else { "disabled" });
                    }
                }
                ModulesAction::Enable { name } | ModulesAction::Disable { name } if !crate::modules::is_known(&name) => {
                    return Err(format!("unknown module {name:?} (known: {})", crate::modules::KNOWN.join(", ")).into());
                }
                ModulesAction::Enable { name } => db.set_module(&name, true).await?,
                ModulesAction::Disable { name } => db.set_module(&name, false).await?,
            }
            db.close().await;
        }
        Command::Users { action: UsersAction::Create { email, password_stdin, admin, display_name } } => {
            let password = if password_stdin { Some(read_password_line()?) } else { None };
            let db = Db::connect(&config.backend).await?;
            db.migrate().await?;
            let identity = crate::services::Services::new(Arc::new(config), db.clone()).await?;
            let new = crate::identity::users::NewUser {
                email,
                password,
                display_name,
                email_verified: true,
                roles: if admin { vec!["admin".to_string()] } else { Vec::new() },
                metadata: None,
            };
            let created = identity.users.create(new).await;
            let user = match created {
                Ok(u) => u,
                Err(e) => {
                    db.close().await;
                    return Err(e.into());
                }
            };
            let ctx = crate::identity::Context::default();
            let entry = crate::identity::audit::Entry::new("user.create").actor("cli").target(&user.id);
            identity.audit.append(&ctx, entry).await?;
            println!("created user {} <{}>{}", user.id, user.email, if admin { " with the admin role" } else { "" });
            if !user.has_password {
                println!("  no password set: send a recovery link from the console or the admin API");
            }
            db.close().await;
        }
        Command::Keys { action } => {
            let db = Db::connect(&config.backend).await?;
            db.migrate().await?;
            let identity = crate::services::Services::new(Arc::new(config), db.clone()).await?;
            let done = keys_command(&identity, action).await;
            db.close().await;
            done?;
        }
        Command::Version => {}
    }
    Ok(())
}

async fn keys_command(identity: &crate::services::Services, action: KeysAction) -> Result<(), Box<dyn std::error::Error>> {
    match action {
        KeysAction::List => {
            for k in identity.signing.list().await? {
                println!(
                    "{}\t{}\t{}\tcreated {}{}",
                    k.kid,
                    k.alg,
                    k.status,
                    k.created_at,
                    k.retired_at.map(|r| format!(", retired {r}")).unwrap_or_default()
                );
            }
        }
        KeysAction::Rotate { alg } => {
            let kid = identity.signing.rotate(&alg).await?;
            let ctx = crate::identity::Context::default();
            let entry = crate::identity::audit::Entry::new("jwks.rotate").actor("cli").target(&kid).detail("alg", alg.as_str());
            identity.audit.append(&ctx, entry).await?;
            println!("rotated {alg}: {kid} is the active key; the previous one stays published");
        }
    }
    Ok(())
}

/// The first line of standard input, without its line ending.
fn read_password_line() -> Result<String, String> {
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).map_err(|e| format!("cannot read the password from stdin: {e}"))?;
    let password = line.trim_end_matches(['\r', '\n']).to_string();
    if password.is_empty() {
        return Err("--password-stdin: standard input held no password".into());
    }
    Ok(password)
}

fn print_config(c: &Config) {
    print!("{}", config_summary(c));
}

/// What `check-config` prints: no secret, only how many admin keys there are.
fn config_summary(c: &Config) -> String {
    let source = c.source.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "(built-in defaults)".into());
    let mut out = String::new();
    let mut line = |s: String| {
        out.push_str(&s);
        out.push('\n');
    };
    line(format!("configuration OK: {source}"));
    line(format!("  server.bind_addr       = {}", c.server.bind_addr));
    line(format!("  server.public_url      = {}", c.public_url()));
    line(format!("  backend.type           = {:?}", c.backend.kind));
    line(format!("  backend.data_dir       = {}", c.backend.data_dir.display()));
    line(format!("  auth.issuer            = {}", c.auth.issuer));
    line(format!("  auth.admin_api_keys    = {} configured", c.auth.admin_api_keys.len()));
    line(format!("  auto_enable_modules    = {:?}", c.auto_enable_modules));
    line(format!(
        "  flows.dir              = {}",
        c.flows.dir.as_ref().map(|d| d.display().to_string()).unwrap_or_else(|| "(bundled only)".into())
    ));
    line(format!(
        "  templates.dir          = {}",
        c.templates.dir.as_ref().map(|d| d.display().to_string()).unwrap_or_else(|| "(bundled only)".into())
    ));
    out
}

fn init_logging(config: &Config) {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_default_env().or_else(|_| EnvFilter::try_new(&config.log.level)).unwrap_or_else(|_| EnvFilter::new("info"));
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(std::io::stderr().is_terminal());
    let _ = match config.log.format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::{ALL_SECRETS, THE_SECRETS};

    #[test]
    fn check_config_prints_no_secret() {
        let c = Config::from_toml_str(ALL_SECRETS, None).map_err(|e| e.to_string());
        let out = c.as_ref().map(config_summary).unwrap_or_default();
        assert!(out.contains("auth.admin_api_keys    = 2 configured"), "{out}{c:?}");
        for secret in THE_SECRETS {
            assert!(!out.contains(secret), "{secret} in {out}");
        }
    }
}
