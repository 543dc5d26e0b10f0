//! First start: an admin API key for a fresh install, so nobody has to edit a config file to
//! reach the admin API. The key is shown once (written to `{data_dir}/admin-key`, mode 0600)
//! and only its SHA-256 is stored.

use std::path::PathBuf;

use crate::config::Config;
use crate::crypto::{random_token, sha256_hex};
use crate::secret_file::write_secret;
use crate::storage::{ensure_data_dir, Db, StorageError};

/// The name of the generated key's row; at most one exists.
const BOOTSTRAP_KEY: &str = "bootstrap";

/// Why the first admin key could not be made.
#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("cannot write the admin key: {0}")]
    File(std::io::Error),
}

/// Generates the first admin key when the config names none and none was generated before.
/// Returns the file it wrote, if it wrote one.
pub async fn ensure_admin_key(config: &Config, db: &Db) -> Result<Option<PathBuf>, BootstrapError> {
    if !config.auth.admin_api_keys.is_empty() {
        return Ok(None);
    }
    let key = format!("sk_admin_{}", random_token(32));
    let id = random_token(16);
    if !db.insert_admin_key_once(&id, BOOTSTRAP_KEY, &sha256_hex(key.as_bytes())).await.map_err(StorageError::from)? {
        return Ok(None); // generated at an earlier start, or by another engine just now
    }
    let path = config.backend.data_dir.join("admin-key");
    let written =
        ensure_data_dir(&config.backend.data_dir).map_err(|e| std::io::Error::other(e.to_string())).and_then(|_| write_secret(&path, &key));
    if let Err(e) = written {
        // Without the file nobody could ever use the key: forget it so the next start retries.
        let _ = db.delete_admin_key(&id).await;
        return Err(BootstrapError::File(e));
    }
    Ok(Some(path))
}
