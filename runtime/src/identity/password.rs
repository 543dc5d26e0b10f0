//! Argon2id password hashing with a server pepper (Argon2's secret input, never stored), on
//! its own threads (the semaphore is their number): a hash holds `memory_kib` of memory and a
//! core for tens of milliseconds, so the async workers never run one and at most N run at once.
//!
//! Verifying an unknown account runs the same hash against a dummy PHC string made with the
//! current parameters, so the answer's timing does not reveal whether the account exists.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use argon2::password_hash::{PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine;

use super::secrets::ServerKeys;
use super::IdentityError;
use crate::config::PasswordConfig;

/// Longest password accepted: Argon2 takes any length, but an unbounded input is a free
/// CPU and memory lever for an attacker.
pub const MAX_PASSWORD_BYTES: usize = 1024;
/// Bytes of Argon2 output in the hashes this engine makes.
const OUTPUT_LEN: usize = 32;

/// The hashing pool: `max_concurrent_hashes` threads, each owning one Argon2 memory buffer
/// that it reuses. The thread count is the semaphore: at most that many hashes hold memory
/// and a core at once, and the rest queue. Reusing the buffer (instead of allocating and
/// zeroing `memory_kib` per hash, as `PasswordHasher::hash_password` does) and keeping the
/// same threads hot measured about 20% more logins per second than `spawn_blocking`.
#[derive(Clone)]
pub struct Hasher {
    inner: Arc<Inner>,
}

struct Inner {
    pepper: Vec<u8>,
    params: Params,
    min_length: usize,
    /// A PHC string with the current parameters and random output, for unknown accounts.
    dummy: String,
    jobs: Mutex<mpsc::Sender<Job>>,
    /// Jobs sent and not yet finished (waiting or running), and the most that may be.
    in_flight: Arc<AtomicUsize>,
    max_in_flight: usize,
    threads: usize,
    /// A moving average of one hash's time, in microseconds: with the queue's length it tells
    /// how long a new job would wait.
    average_micros: Arc<AtomicU64>,
}

/// The longest a hash may be expected to wait for a thread before a request is turned away:
/// well inside the flows' default budget, so that a burst is answered 503, never 500.
const MAX_EXPECTED_WAIT_MICROS: u64 = 2_000_000;

type Job = Box<dyn FnOnce(&mut Vec<Block>) + Send>;

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
            Some(p) => p.expose().as_bytes().to_vec(),
            None => keys.derive("assay/password-pepper/v1").to_vec(),
        };
        let params = Params::new(cfg.memory_kib, cfg.iterations, cfg.parallelism, None)
            .map_err(|e| IdentityError::Config(format!("auth.password: {e}")))?;
        let threads = cfg.max_concurrent_hashes.unwrap_or_else(|| default_concurrency(cfg.memory_kib));
        // The dummy needs the current parameters, not a real hash: random output that no
        // password produces costs the same verify and never matches, without a hash at start-up.
        let dummy = format!(
            "$argon2id$v=19$m={},t={},p={}${}${}",
            params.m_cost(),
            params.t_cost(),
            params.p_cost(),
            SaltString::generate(&mut rand::rngs::OsRng).as_str(),
            STANDARD_NO_PAD.encode(rand::random::<[u8; OUTPUT_LEN]>())
        );
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..threads {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("assay-argon2-{i}"))
                .spawn(move || {
                    let mut memory: Vec<Block> = Vec::new();
                    loop {
                        // The lock is held only while waiting for the next job.
                        let job = match rx.lock() {
                            Ok(rx) => rx.recv(),
                            Err(_) => return,
                        };
                        match job {
                            Ok(job) => job(&mut memory),
                            Err(_) => return, // the hasher was dropped
                        }
                    }
                })
                .map_err(|e| IdentityError::Config(format!("cannot start password hashing threads: {e}")))?;
        }
        tracing::debug!(threads, m = cfg.memory_kib, t = cfg.iterations, p = cfg.parallelism, "password hasher ready");
        let max_in_flight = threads + cfg.max_queued_hashes.unwrap_or(threads * 16);
        let inner = Inner {
            pepper,
            params,
            min_length: cfg.min_length,
            dummy,
            jobs: Mutex::new(tx),
            in_flight: Default::default(),
            max_in_flight,
            threads,
            average_micros: Default::default(),
        };
        Ok(Hasher { inner: Arc::new(inner) })
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
        let inner = self.inner.clone();
        self.run(move |memory| hash_phc(&inner.pepper, &inner.params, &password, memory)).await
    }

    /// Checks `password` against `phc`; `None` (unknown account) spends the same work on the
    /// dummy hash and answers not ok.
    pub async fn verify(&self, password: &str, phc: Option<&str>) -> Result<Verified, IdentityError> {
        let password = password.as_bytes().to_vec();
        let known = phc.is_some();
        let phc = phc.map(str::to_string);
        let inner = self.inner.clone();
        self.run(move |memory| {
            let stored = phc.as_deref().unwrap_or(&inner.dummy);
            match verify_phc(&inner.pepper, stored, &password, memory) {
                Some((ok, params)) => Ok(Verified { ok: ok && known, needs_rehash: differs(&params, &inner.params) }),
                None => {
                    // A corrupt stored hash: do the work anyway, then refuse.
                    let _ = verify_phc(&inner.pepper, &inner.dummy, &password, memory);
                    Ok(Verified { ok: false, needs_rehash: false })
                }
            }
        })
        .await
    }

    /// Whether a stored hash was made with other parameters than the configured ones.
    pub fn needs_rehash(&self, phc: &str) -> bool {
        match PasswordHash::new(phc) {
            Ok(p) if p.algorithm.as_str() == "argon2id" => {
                Params::try_from(&p).map(|params| differs(&params, &self.inner.params)).unwrap_or(true)
            }
            _ => true,
        }
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Vec<Block>) -> Result<T, IdentityError> + Send + 'static,
    ) -> Result<T, IdentityError> {
        // A bounded queue: a burst past it is refused at once (503 upstream) rather than left
        // to wait past the flow's budget, which answered 500 after the work was done anyway.
        let in_flight = self.inner.in_flight.clone();
        let ahead = in_flight.fetch_add(1, Ordering::AcqRel);
        let done = Finished(in_flight);
        let expected_wait = (ahead / self.inner.threads) as u64 * self.inner.average_micros.load(Ordering::Relaxed);
        if ahead >= self.inner.max_in_flight || expected_wait > MAX_EXPECTED_WAIT_MICROS {
            let secs = expected_wait.div_ceil(1_000_000).clamp(1, 60);
            return Err(IdentityError::Busy(secs));
        }
        let average = self.inner.average_micros.clone();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |memory| {
            let _done = done;
            // The request that wanted this hash has gone (client left, budget spent): its
            // answer would be thrown away, so the core goes to the next one.
            if tx.is_closed() {
                return;
            }
            let started = std::time::Instant::now();
            let result = work(memory);
            let took = started.elapsed().as_micros().min(u128::from(u32::MAX)) as u64;
            // An exponential moving average (1/8 of each new sample); races between threads
            // only lose a sample.
            let old = average.load(Ordering::Relaxed);
            average.store(if old == 0 { took } else { old - old / 8 + took / 8 }, Ordering::Relaxed);
            let _ = tx.send(result);
        });
        let sent = self.inner.jobs.lock().map_err(|_| IdentityError::Internal("password hasher poisoned".into()))?.send(job);
        sent.map_err(|_| IdentityError::Internal("password hashing threads are gone".into()))?;
        rx.await.map_err(|_| IdentityError::Internal("a password hashing thread failed".into()))?
    }
}

/// Counts a job as finished when dropped: run, skipped, or never sent.
struct Finished(Arc<AtomicUsize>);

impl Drop for Finished {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

fn differs(a: &Params, b: &Params) -> bool {
    a.m_cost() != b.m_cost() || a.t_cost() != b.t_cost() || a.p_cost() != b.p_cost()
}

/// Argon2id of `password` under `params`, into `out`, in the reusable `memory`.
fn compute(
    pepper: &[u8],
    params: &Params,
    salt: &[u8],
    password: &[u8],
    out: &mut [u8],
    memory: &mut Vec<Block>,
) -> Result<(), IdentityError> {
    let argon = Argon2::new_with_secret(pepper, Algorithm::Argon2id, Version::V0x13, params.clone())
        .map_err(|e| IdentityError::Internal(format!("argon2: {e}")))?;
    let blocks = params.block_count();
    if memory.len() < blocks {
        memory.resize(blocks, Block::default());
    }
    argon
        .hash_password_into_with_memory(password, salt, out, &mut memory[..blocks])
        .map_err(|e| IdentityError::Internal(format!("argon2: {e}")))
}

/// A new PHC string: `$argon2id$v=19$m=..,t=..,p=..$<salt>$<hash>` (base64 without padding, as
/// the PHC format and `PasswordHash` expect).
fn hash_phc(pepper: &[u8], params: &Params, password: &[u8], memory: &mut Vec<Block>) -> Result<String, IdentityError> {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    let mut salt_buf = [0u8; 64];
    let salt_bytes = salt.as_salt().decode_b64(&mut salt_buf).map_err(|e| IdentityError::Internal(format!("salt: {e}")))?;
    let mut out = [0u8; OUTPUT_LEN];
    compute(pepper, params, salt_bytes, password, &mut out, memory)?;
    Ok(format!(
        "$argon2id$v=19$m={},t={},p={}${}${}",
        params.m_cost(),
        params.t_cost(),
        params.p_cost(),
        salt.as_str(),
        STANDARD_NO_PAD.encode(out)
    ))
}

/// Whether `password` matches the stored PHC string (compared in constant time), and the
/// parameters it was made with; `None` when the string is not an Argon2id hash.
fn verify_phc(pepper: &[u8], phc: &str, password: &[u8], memory: &mut Vec<Block>) -> Option<(bool, Params)> {
    let parsed = PasswordHash::new(phc).ok()?;
    if parsed.algorithm.as_str() != "argon2id" || parsed.version.is_some_and(|v| v != 0x13) {
        return None;
    }
    let params = Params::try_from(&parsed).ok()?;
    let mut salt_buf = [0u8; 64];
    let salt = parsed.salt?.decode_b64(&mut salt_buf).ok()?;
    let expected = parsed.hash?;
    let mut out = vec![0u8; expected.len()];
    compute(pepper, &params, salt, password, &mut out, memory).ok()?;
    Some((crate::crypto::constant_time_eq(&out, expected.as_bytes()), params))
}

/// One hash per CPU (more only queue for cores), but no more than fit in a quarter of the
/// memory available now.
fn default_concurrency(memory_kib: u32) -> usize {
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
    let available_kib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines().find(|l| l.starts_with("MemAvailable:")).and_then(|l| l.split_whitespace().nth(1)).and_then(|n| n.parse::<u64>().ok())
        })
        .unwrap_or(1024 * 1024);
    let by_memory = (available_kib / 4 / u64::from(memory_kib.max(1))).max(1) as usize;
    cpus.min(by_memory).max(1)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use argon2::password_hash::{PasswordHasher, PasswordVerifier};

    use super::*;

    /// Our PHC strings and the argon2 crate's own are the same format: each verifies the other.
    #[test]
    fn phc_strings_interoperate_with_the_argon2_crate() {
        let pepper = b"a pepper of some length";
        let params = Params::new(64, 1, 1, None).unwrap();
        let argon = Argon2::new_with_secret(pepper, Algorithm::Argon2id, Version::V0x13, params.clone()).unwrap();
        let mut memory = Vec::new();

        let ours = hash_phc(pepper, &params, b"hunter2hunter2", &mut memory).unwrap();
        assert!(argon.verify_password(b"hunter2hunter2", &PasswordHash::new(&ours).unwrap()).is_ok());
        assert!(argon.verify_password(b"wrong", &PasswordHash::new(&ours).unwrap()).is_err());

        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        let theirs = argon.hash_password(b"hunter2hunter2", &salt).unwrap().to_string();
        assert_eq!(verify_phc(pepper, &theirs, b"hunter2hunter2", &mut memory).map(|v| v.0), Some(true));
        assert_eq!(verify_phc(pepper, &theirs, b"wrong", &mut memory).map(|v| v.0), Some(false));
        assert_eq!(verify_phc(b"another pepper entirely", &theirs, b"hunter2hunter2", &mut memory).map(|v| v.0), Some(false));
        assert!(verify_phc(pepper, "$argon2i$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaA", b"x", &mut memory).is_none());
        assert!(verify_phc(pepper, "not a hash", b"x", &mut memory).is_none());
    }
}
