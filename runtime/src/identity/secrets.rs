//! The master key and the keys derived from it. The master key comes from `[auth] master_key`
//! or, on first start without one, is generated into `{data_dir}/master-key` (mode 0600). A
//! check value (an HMAC of a fixed label, not the key) is stored in `engine.settings`, so an
//! engine started with a different master key than its peers on the same database refuses to
//! start instead of failing every login.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::store::SettingsStore;
use super::IdentityError;
use crate::config::Config;
use crate::storage::Db;

pub struct ServerKeys {
    master: Vec<u8>,
}

const CHECK_SETTING: &str = "master_key_check";

impl ServerKeys {
    pub async fn load(config: &Config, db: &Db) -> Result<ServerKeys, IdentityError> {
        let master = match &config.auth.master_key {
            Some(k) => k.expose().to_string(),
            None => from_file(config)?,
        };
        let keys = ServerKeys { master: master.into_bytes() };
        let check = hex::encode(keys.derive("assay/master-key-check/v1"));
        let stored = SettingsStore::new(db.clone()).first_value(CHECK_SETTING, &check).await?;
        if !crate::crypto::constant_time_eq(stored.as_bytes(), check.as_bytes()) {
            return Err(IdentityError::Config(
                "auth.master_key: this engine's master key differs from the one this database was set up with \
                 (every engine on one database needs the same [auth] master_key)"
                    .into(),
            ));
        }
        Ok(keys)
    }

    /// A 256-bit key for one purpose (HMAC-SHA-256 of the purpose's label under the master key).
    pub fn derive(&self, label: &str) -> [u8; 32] {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.master).unwrap_or_else(|_| unreachable_hmac());
        mac.update(label.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// HMAC-SHA-256 of `data` under the key for `label`.
    pub fn mac(&self, label: &str, data: &[u8]) -> [u8; 32] {
        let key = self.derive(label);
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&key).unwrap_or_else(|_| unreachable_hmac());
        mac.update(data);
        mac.finalize().into_bytes().into()
    }
}

#[allow(clippy::panic)]
fn unreachable_hmac() -> Hmac<Sha256> {
    panic!("HMAC accepts keys of any length")
}

fn from_file(config: &Config) -> Result<String, IdentityError> {
    let path = config.backend.data_dir.join("master-key");
    match std::fs::read_to_string(&path) {
        Ok(text) if text.trim().len() >= 32 => return Ok(text.trim().to_string()),
        Ok(_) => return Err(IdentityError::Config(format!("{} holds no key of at least 32 characters", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(IdentityError::Config(format!("cannot read {}: {e}", path.display()))),
    }
    crate::storage::ensure_data_dir(&config.backend.data_dir).map_err(|e| IdentityError::Config(e.to_string()))?;
    let key = hex::encode(rand::random::<[u8; 32]>());
    // create_new: two processes starting at once on one data dir must not both write.
    match crate::secret_file::write_new_secret(&path, &key) {
        Ok(()) => {
            if matches!(config.backend.kind, crate::config::BackendType::Postgres) {
                tracing::warn!(path = %path.display(), "generated a master key; every engine sharing this PostgreSQL needs the same one: set [auth] master_key");
            }
            Ok(key)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => read_written_by_peer(&path),
        Err(e) => Err(IdentityError::Config(format!("cannot write {}: {e}", path.display()))),
    }
}

/// The key another process on the same data dir is writing right now: it created the file an
/// instant before its contents, so wait briefly for them.
fn read_written_by_peer(path: &std::path::Path) -> Result<String, IdentityError> {
    for _ in 0..50 {
        match std::fs::read_to_string(path) {
            Ok(text) if text.trim().len() >= 32 => return Ok(text.trim().to_string()),
            Ok(_) => std::thread::sleep(std::time::Duration::from_millis(20)),
            Err(e) => return Err(IdentityError::Config(format!("cannot read {}: {e}", path.display()))),
        }
    }
    Err(IdentityError::Config(format!("{} stayed empty (another engine failed while writing it?)", path.display())))
}
