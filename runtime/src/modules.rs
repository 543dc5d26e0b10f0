//! Runtime module switching. A module owns the routes under its path prefixes; whether it is
//! on is a row in `engine.modules`, so every engine sharing a database agrees. Each engine
//! reads the table at start and then every [`REFRESH`] in the background, so a switch takes
//! effect everywhere within that interval without a restart.

use std::collections::HashSet;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::storage::Db;

/// Modules this build knows. (`auth` is compiled in once; only its switch varies.)
pub use crate::config::MODULES as KNOWN;

/// How often each engine re-reads `engine.modules`.
pub const REFRESH: Duration = Duration::from_secs(2);

pub fn is_known(name: &str) -> bool {
    KNOWN.contains(&name)
}

/// The module that owns a request path, if any. Paths owned by no module (`/healthz`,
/// `/readyz`) are always served.
pub fn owner_of(path: &str) -> Option<&'static str> {
    const AUTH_PREFIXES: &[&str] = &["/auth", "/.well-known"];
    AUTH_PREFIXES.iter().any(|p| path == *p || path.strip_prefix(p).is_some_and(|rest| rest.starts_with('/'))).then_some("auth")
}

/// The set of enabled modules as last read from the database.
#[derive(Clone, Default)]
pub struct ModuleSwitch {
    enabled: Arc<RwLock<HashSet<String>>>,
}

impl ModuleSwitch {
    pub fn is_enabled(&self, module: &str) -> bool {
        self.enabled.read().map(|s| s.contains(module)).unwrap_or(false)
    }

    pub fn set(&self, enabled: HashSet<String>) {
        if let Ok(mut s) = self.enabled.write() {
            *s = enabled;
        }
    }

    /// Re-reads the table now.
    pub async fn refresh(&self, db: &Db) -> Result<(), sqlx::Error> {
        let rows = db.modules().await?;
        self.set(rows.into_iter().filter(|(_, on)| *on).map(|(n, _)| n).collect());
        Ok(())
    }

    /// Keeps the set fresh until the process ends; a failed read keeps the last known set.
    pub fn spawn_refresher(&self, db: Db) {
        let me = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(REFRESH);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if let Err(e) = me.refresh(&db).await {
                    tracing::warn!(error = %e, "could not re-read engine.modules; keeping the last known set");
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ownership_by_prefix() {
        assert_eq!(owner_of("/auth/hello"), Some("auth"));
        assert_eq!(owner_of("/auth"), Some("auth"));
        assert_eq!(owner_of("/.well-known/openid-configuration"), Some("auth"));
        assert_eq!(owner_of("/authx"), None);
        assert_eq!(owner_of("/healthz"), None);
    }
}
