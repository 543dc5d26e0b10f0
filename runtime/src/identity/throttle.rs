//! Brute-force counters in `auth.login_throttle`, shared by every engine on the database.
//!
//! Per account (`account:<email>`) and per client IP (`ip:<address>`): failures inside
//! `window_secs` are counted. Past `free_failures` an account must wait 1 s, 2 s, 4 s... (capped
//! at the lockout) before its next attempt; at `max_failures` it is locked for `lockout_secs`.
//! An IP is locked at `ip_max_failures`. The wait is stored as `locked_until`, so a throttled
//! attempt costs one indexed read and no hash. A successful login clears its account's row
//! (not the IP's: one good password must not reset a spray).

use super::audit::{self, Audit};
use super::store::ThrottleStore;
use super::{Context, IdentityError};
use crate::config::BruteForceConfig;
use crate::storage::{Db, Timestamp};

pub use super::store::throttle::Counter;

pub type Page = crate::storage::Page<Counter>;

/// The brute-force counters and rate limits service.
#[derive(Clone)]
pub struct Throttle {
    store: ThrottleStore,
    rules: BruteForceConfig,
    audit: Audit,
}

impl Throttle {
    pub fn new(db: Db, rules: BruteForceConfig, audit: Audit) -> Throttle {
        Throttle { store: ThrottleStore::new(db), rules, audit }
    }

    /// Seconds until the first of `keys` may try again, if any of them is held back.
    pub async fn retry_after(&self, keys: &[&str]) -> Result<Option<u64>, IdentityError> {
        let now = Timestamp::now();
        let mut wait: Option<u64> = None;
        for key in keys {
            if let Some(Some(until)) = self.store.locked_until(key).await? {
                if until > now {
                    let secs = (until.0 - now.0).num_milliseconds().max(0) as u64;
                    let secs = secs.div_ceil(1000).max(1);
                    wait = Some(wait.map_or(secs, |w| w.max(secs)));
                }
            }
        }
        Ok(wait)
    }

    /// Counts a failed login against the account and the IP and sets their wait.
    pub async fn record_failure(&self, account_key: &str, ip_key: Option<&str>, email: &str, ctx: &Context) -> Result<(), IdentityError> {
        let bf = &self.rules;
        let failures = self.bump(account_key).await?;
        let delay = if failures >= i64::from(bf.max_failures) {
            self.audit.append(ctx, audit::Entry::new("login.locked").actor(email).target(account_key).detail("failures", failures)).await?;
            Some(bf.lockout_secs)
        } else if failures > i64::from(bf.free_failures) {
            let step = (failures - i64::from(bf.free_failures) - 1).min(20) as u32;
            Some(2u64.pow(step).min(bf.lockout_secs))
        } else {
            None
        };
        if let Some(secs) = delay {
            self.lock(account_key, secs).await?;
        }
        if let Some(ip_key) = ip_key {
            let failures = self.bump(ip_key).await?;
            if failures >= i64::from(bf.ip_max_failures) {
                if failures == i64::from(bf.ip_max_failures) {
                    self.audit.append(ctx, audit::Entry::new("login.locked").target(ip_key).detail("failures", failures)).await?;
                }
                self.lock(ip_key, bf.lockout_secs).await?;
            }
        }
        Ok(())
    }

    /// A rate limit on `key`: counts this attempt, and answers how many seconds to wait when
    /// it is past `limit` attempts in a window of `window_secs` (a fixed window from the first
    /// attempt). The counter lives in the same table as the sign-in counters, so every engine
    /// on the database sees it and an administrator can list and clear it.
    pub async fn hit(&self, key: &str, limit: u32, window_secs: u64) -> Result<Option<u64>, IdentityError> {
        // A prefix and an identifier, so a little longer than an identifier alone.
        super::input::check_text("key", key, 300)?;
        let now = Timestamp::now();
        let window_start = Timestamp(now.0 - chrono::Duration::seconds(window_secs.min(i64::MAX as u64 / 2) as i64));
        let (count, started) = self.store.hit(key, now, window_start).await?;
        if count <= i64::from(limit) {
            return Ok(None);
        }
        let ends = started.0 + chrono::Duration::seconds(window_secs as i64);
        let secs = (ends - now.0).num_milliseconds().max(0) as u64;
        let secs = secs.div_ceil(1000).max(1);
        // Held back until the window ends: recorded as a lock, so `throttle.list` shows it.
        self.lock(key, secs).await?;
        Ok(Some(secs))
    }

    /// One more failure for `key` (a fresh count once the window has passed); returns the count.
    async fn bump(&self, key: &str) -> Result<i64, IdentityError> {
        let now = Timestamp::now();
        let window_start = Timestamp(now.0 - chrono::Duration::seconds(self.rules.window_secs as i64));
        Ok(self.store.bump(key, now, window_start).await?)
    }

    async fn lock(&self, key: &str, secs: u64) -> Result<(), IdentityError> {
        let until = Timestamp(Timestamp::now().0 + chrono::Duration::seconds(secs as i64));
        self.store.lock(key, until).await?;
        Ok(())
    }

    /// Forgets `key`'s failures; returns whether there were any.
    pub async fn clear(&self, key: &str) -> Result<bool, IdentityError> {
        let n = self.store.clear(key).await?;
        Ok(n > 0)
    }

    /// Counters with failures inside the window or a lock still running, by key.
    pub async fn list(&self, limit: i64, cursor: Option<&str>) -> Result<Page, IdentityError> {
        let limit = limit.clamp(1, crate::storage::MAX_PAGE);
        let now = Timestamp::now();
        let window_start = Timestamp(now.0 - chrono::Duration::seconds(self.rules.window_secs as i64));
        Ok(self.store.list(window_start, now, limit, cursor).await?)
    }
}
