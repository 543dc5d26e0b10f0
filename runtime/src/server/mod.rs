//! The HTTP server: hyper 1 on tokio, HTTP/1.1 with keep-alive, header-read and idle timeouts,
//! and a graceful shutdown on SIGTERM/SIGINT that lets in-flight requests finish.

pub mod client_ip;
mod errors;
mod handler;
mod idle;
mod nul;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;

use crate::config::Config;
use crate::lua::{FlowError, LuaHost, Shared};
use crate::modules::ModuleSwitch;
use crate::storage::{Db, StorageError};
use crate::templates::Templates;

/// Everything a request may need, built once at start.
pub struct App {
    pub config: Arc<Config>,
    pub db: Db,
    pub lua: LuaHost,
    pub templates: Templates,
    pub modules: ModuleSwitch,
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Flow(#[from] FlowError),
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error(transparent)]
    AdminKey(#[from] crate::bootstrap::BootstrapError),
    #[error("cannot build the outbound HTTP client: {0}")]
    Client(reqwest::Error),
    #[error(transparent)]
    Identity(#[from] crate::identity::IdentityError),
}

/// The outbound client shared by the stdlib (`http.request`, later federation and logout).
pub fn http_client() -> Result<reqwest::Client, ServeError> {
    client_builder().timeout(Duration::from_secs(30)).build().map_err(ServeError::Client)
}

/// What every outbound client of the engine has: its user agent and a connect timeout.
fn client_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder().user_agent(concat!("assay-engine/", env!("CARGO_PKG_VERSION"))).connect_timeout(Duration::from_secs(5))
}

/// Connects, migrates, loads flows, and serves until a shutdown signal.
pub async fn serve(config: Config) -> Result<(), ServeError> {
    let config = Arc::new(config);
    let db = Db::connect(&config.backend).await?;
    let report = db.migrate().await?;
    tracing::info!(backend = db.backend_name(), applied = report.applied.len(), already = report.already, "migrations current");
    db.auto_enable_modules(&config.auto_enable_modules).await.map_err(StorageError::from)?;
    let modules = ModuleSwitch::default();
    modules.refresh(&db).await.map_err(StorageError::from)?;
    modules.spawn_refresher(db.clone());
    let admin_key_file = crate::bootstrap::ensure_admin_key(&config, &db).await?;

    let identity = Arc::new(crate::services::Services::new(config.clone(), db.clone()).await?);
    let kid = identity.signing.ensure(crate::oidc::keys::DEFAULT_ALG).await?;
    tracing::info!(kid, alg = crate::oidc::keys::DEFAULT_ALG, "signing key ready");
    spawn_key_maintenance(identity.clone());
    // A Logout Token is POSTed to the registered URI only: a redirect is a failed delivery.
    let delivery_client = client_builder().redirect(reqwest::redirect::Policy::none()).build().map_err(ServeError::Client)?;
    spawn_logout_delivery(identity.clone(), delivery_client);
    if !identity.mailer.configured() {
        tracing::warn!("no [auth.smtp] configured: recovery and verification links will be written to the log");
    }

    let templates = Templates::new(config.templates.dir.as_deref());
    let shared = Arc::new(Shared {
        bindings: crate::stdlib::BINDINGS,
        config: config.clone(),
        templates: templates.clone(),
        db: Some(db.clone()),
        client: http_client()?,
        identity: Some(identity),
    });
    let lua = LuaHost::new(shared).await?;
    tracing::info!(flows = lua.flows().len(), routes = lua.routes().entries().len(), "flows loaded");

    let listener =
        TcpListener::bind(config.server.bind_addr).await.map_err(|source| ServeError::Bind { addr: config.server.bind_addr, source })?;
    let local = listener.local_addr().map_err(|source| ServeError::Bind { addr: config.server.bind_addr, source })?;
    announce(&config, &db, local, admin_key_file.as_deref());

    let app = Arc::new(App { config: config.clone(), db: db.clone(), lua, templates, modules });
    accept_loop(app, listener).await;
    db.close().await;
    Ok(())
}

/// What an operator needs to know, on stdout (logs go to stderr).
fn announce(config: &Config, db: &Db, local: SocketAddr, admin_key_file: Option<&std::path::Path>) {
    let public = config.public_url();
    println!("assay-engine {} listening on http://{local}", env!("CARGO_PKG_VERSION"));
    println!(
        "  backend: {} ({})",
        db.backend_name(),
        match db {
            Db::Sqlite(_) => config.backend.data_dir.display().to_string(),
            Db::Postgres(_) => "PostgreSQL".to_string(),
        }
    );
    println!("  issuer:  {}", config.auth.issuer);
    println!("  console: {public}/auth/console");
    match admin_key_file {
        Some(path) => println!("  admin API key: written once to {} (mode 0600; only its hash is stored)", path.display()),
        None => println!("  admin API key: use a key from [auth] admin_api_keys or the one written at first start"),
    }
}

async fn accept_loop(app: Arc<App>, listener: TcpListener) {
    let server = &app.config.server;
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.keep_alive(true).timer(TokioTimer::new()).header_read_timeout(Duration::from_secs(server.header_read_timeout_secs.max(1)));
    let idle = Duration::from_secs(server.idle_timeout_secs.max(1));
    let grace = Duration::from_secs(server.shutdown_grace_secs);
    let graceful = GracefulShutdown::new();
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);

    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(pair) => pair,
                    Err(e) => {
                        // Usually out of file descriptors: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let in_flight = Arc::new(AtomicUsize::new(0));
                let io = TokioIo::new(idle::IdleTimeout::new(stream, idle, in_flight.clone()));
                let app = app.clone();
                let svc = service_fn(move |req| {
                    let guard = idle::InFlight::enter(&in_flight);
                    let app = app.clone();
                    async move {
                        let resp = handler::handle(app, req, peer).await;
                        drop(guard);
                        Ok::<_, Infallible>(resp)
                    }
                });
                let conn = graceful.watch(builder.serve_connection(io, svc));
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!(error = %e, %peer, "connection ended with an error");
                    }
                });
            }
            _ = &mut shutdown => break,
        }
    }
    drop(listener);
    tracing::info!("shutting down: no new connections; waiting for in-flight requests");
    match tokio::time::timeout(grace, graceful.shutdown()).await {
        Ok(()) => tracing::info!("all connections closed"),
        Err(_) => tracing::warn!(grace_secs = grace.as_secs(), "grace period over; closing remaining connections"),
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => tracing::info!("SIGINT received"),
        _ = term => tracing::info!("SIGTERM received"),
    }
}

/// Scheduled signing-key rotation and pruning: at start and then hourly (see
/// `SigningKeys::maintain` for why several engines may all run it).
fn spawn_key_maintenance(identity: Arc<crate::services::Services>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(3600));
        loop {
            tick.tick().await;
            if let Err(e) = identity.signing.maintain().await {
                tracing::error!(error = %e, "signing key maintenance failed");
            }
        }
    });
}

/// Sends queued back-channel Logout Tokens: at once when a logout queues some, and every few
/// seconds for retries and for rows another engine queued.
fn spawn_logout_delivery(identity: Arc<crate::services::Services>, http: reqwest::Client) {
    tokio::spawn(async move {
        loop {
            if let Err(e) = identity.logout.deliver(&http).await {
                tracing::error!(error = %e, "back-channel logout delivery failed");
            }
            let _ = tokio::time::timeout(Duration::from_secs(5), identity.logout.queued()).await;
        }
    });
}
