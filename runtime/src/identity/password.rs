//! Argon2id password hashing with a server pepper (Argon2's secret input, never stored), on
//! blocking threads behind a semaphore: a hash holds `memory_kib` of memory and a core for
//! tens of milliseconds, so the async workers never run one and at most N run at once.
//!
//! Verifying an unknown account runs the same hash against a dummy PHC string made with the
//! current parameters, so the answer's timing does not reveal whether the account exists.

use std::sync::Arc;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;

use super::secrets::ServerKeys;
use super::IdentityError;
use crate::config::PasswordConfig;

/// Longest password accepted: Argon2 takes any length, but an unbounded input is a free
/// CPU and memory lever for an attacker.
pub const MAX_PASSWORD_BYTES: usize = 1024;

#[derive(Clone)]
pub struct Hasher {
    inner: Arc<Inner>,
}

struct Inner {
    pepper: Vec<u8>,
    params: Params,
    permits: Semaphore,
    min_length: usize,
    /// A hash of a random password with the current parameters, for unknown accounts.
    dummy: String,
}

/// What verifying a password found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified {
    pub ok: bool,
    /// The hash was made with other parameters than the configured ones.
    pub needs_rehash: bool,
}

impl Hasher {
    pub fn new(cfg: &PasswordConfig, keys: &ServerKeys) -> Result<Hasher, IdentityError> {
        let pepper = match &cfg.pepper {
            Some(p) => p.as_bytes().to_vec(),
            None => keys.derive("assay/password-pepper/v1").to_vec(),
        };
        let params = Params::new(cfg.memory_kib, cfg.iterations, cfg.parallelism, None)
            .map_err(|e| IdentityError::Config(format!("auth.password: {e}")))?;
        let permits = cfg.max_concurrent_hashes.unwrap_or_else(|| default_concurrency(cfg.memory_kib));
        let argon = Argon2::new_with_secret(&pepper, Algorithm::Argon2id, Version::V0x13, params.clone())
            .map_err(|e| IdentityError::Config(format!("auth.password.pepper: {e}")))?;
        let dummy = hash_with(&argon, crate::stdlib::crypto::random_token(24).as_bytes())?;
        tracing::debug!(permits, m = cfg.memory_kib, t = cfg.iterations, p = cfg.parallelism, "password hasher ready");
        Ok(Hasher {
            inner: Arc::new(Inner { pepper, params, permits: Semaphore::new(permits), min_length: cfg.min_length, dummy }),
        })
    }

    /// `Ok` or `WeakPassword` with the reason (length only: NIST SP 800-63B advises against
    /// composition rules).
    pub fn check_policy(&self, password: &str) -> Result<(), IdentityError> {
        let chars = password.chars().count();
        if chars < self.inner.min_length {
            return Err(IdentityError::WeakPassword(format!("use at least {} characters", self.inner.min_length)));
        }
        if password.len() > MAX_PASSWORD_BYTES {
            return Err(IdentityError::WeakPassword(format!("use at most {MAX_PASSWORD_BYTES} bytes")));
        }
        Ok(())
    }

    /// A PHC string (`$argon2id$v=19$m=...`) for `password`.
    pub async fn hash(&self, password: &str) -> Result<String, IdentityError> {
        let password = password.as_bytes().to_vec();
        self.blocking(move |inner| hash_with(&inner.argon()?, &password)).await
    }

    /// Checks `password` against `phc`; `None` (unknown account) spends the same work on the
    /// dummy hash and answers not ok.
    pub async fn verify(&self, password: &str, phc: Option<&str>) -> Result<Verified, IdentityError> {
        let password = password.as_bytes().to_vec();
        let known = phc.is_some();
        let phc = phc.map(str::to_string);
        self.blocking(move |inner| {
            let phc = phc.as_deref().unwrap_or(&inner.dummy);
            let parsed = match PasswordHash::new(phc) {
                Ok(p) => p,
                Err(_) => {
                    // A corrupt stored hash: do the work anyway, then refuse.
                    let _ = inner.verify_dummy(&password);
                    return Ok(Verified { ok: false, needs_rehash: false });
                }
            };
            let params = Params::try_from(&parsed).map_err(|e| IdentityError::Internal(format!("stored hash: {e}")))?;
            let argon = Argon2::new_with_secret(&inner.pepper, Algorithm::Argon2id, Version::V0x13, params.clone())
                .map_err(|e| IdentityError::Internal(e.to_string()))?;
            let ok = argon.verify_password(&password, &parsed).is_ok() && known;
            let needs_rehash = parsed.algorithm.as_str() != "argon2id"
                || params.m_cost() != inner.params.m_cost()
                || params.t_cost() != inner.params.t_cost()
                || params.p_cost() != inner.params.p_cost();
            Ok(Verified { ok, needs_rehash })
        })
        .await
    }

    /// Whether a stored hash was made with other parameters than the configured ones.
    pub fn needs_rehash(&self, phc: &str) -> bool {
        match PasswordHash::new(phc).ok().and_then(|p| Params::try_from(&p).ok().map(|params| (p.algorithm, params))) {
            Some((alg, p)) => {
                alg.as_str() != "argon2id"
                    || p.m_cost() != self.inner.params.m_cost()
                    || p.t_cost() != self.inner.params.t_cost()
                    || p.p_cost() != self.inner.params.p_cost()
            }
            None => true,
        }
    }

    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Inner) -> Result<T, IdentityError> + Send + 'static,
    ) -> Result<T, IdentityError> {
        let _permit = self.inner.permits.acquire().await.map_err(|e| IdentityError::Internal(e.to_string()))?;
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || work(&inner))
            .await
            .map_err(|e| IdentityError::Internal(format!("password hashing task failed: {e}")))?
    }
}

impl Inner {
    fn argon(&self) -> Result<Argon2<'_>, IdentityError> {
        Argon2::new_with_secret(&self.pepper, Algorithm::Argon2id, Version::V0x13, self.params.clone())
            .map_err(|e| IdentityError::Internal(e.to_string()))
    }

    fn verify_dummy(&self, password: &[u8]) -> Result<(), IdentityError> {
        let parsed = PasswordHash::new(&self.dummy).map_err(|e| IdentityError::Internal(e.to_string()))?;
        let _ = self.argon()?.verify_password(password, &parsed);
        Ok(())
    }
}

fn hash_with(argon: &Argon2<'_>, password: &[u8]) -> Result<String, IdentityError> {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    argon
        .hash_password(password, &salt)
        .map(|h| h.to_string())
        .map_err(|e| IdentityError::Internal(format!("argon2: {e}")))
}

/// One hash per CPU (more only queue for cores), but no more than fit in a quarter of the
/// memory available now.
fn default_concurrency(memory_kib: u32) -> usize {
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
    let available_kib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemAvailable:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse::<u64>().ok())
        })
        .unwrap_or(1024 * 1024);
    let by_memory = (available_kib / 4 / u64::from(memory_kib.max(1))).max(1) as usize;
    cpus.min(by_memory).max(1)
}
