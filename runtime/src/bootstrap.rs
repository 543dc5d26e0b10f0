//! First start: an admin API key for a fresh install, so nobody has to edit a config file to
//! reach the admin API. The key is shown once (written to `{data_dir}/admin-key`, mode 0600)
//! and only its SHA-256 is stored.

use std::io::Write;
use std::path::PathBuf;

use crate::config::Config;
use crate::server::ServeError;
use crate::storage::{ensure_data_dir, Db, StorageError};
use crate::stdlib::crypto::{random_token, sha256_hex};

/// The name of the generated key's row; at most one exists.
const BOOTSTRAP_KEY: &str = "bootstrap";

/// Generates the first admin key when the config names none and none was generated before.
/// Returns the file it wrote, if it wrote one.
pub async fn ensure_admin_key(config: &Config, db: &Db) -> Result<Option<PathBuf>, ServeError> {
    if !config.auth.admin_api_keys.is_empty() {
        return Ok(None);
    }
    let key = format!("sk_admin_{}", random_token(32));
    let id = random_token(16);
    if !db.insert_admin_key_once(&id, BOOTSTRAP_KEY, &sha256_hex(key.as_bytes())).await.map_err(StorageError::from)? {
        return Ok(None); // generated at an earlier start, or by another engine just now
    }
    let path = config.backend.data_dir.join("admin-key");
    let written = ensure_data_dir(&config.backend.data_dir)
        .map_err(|e| std::io::Error::other(e.to_string()))
        .and_then(|_| write_secret(&path, &key));
    if let Err(e) = written {
        // Without the file nobody could ever use the key: forget it so the next start retries.
        let _ = db.delete_admin_key(&id).await;
        return Err(ServeError::AdminKey(e));
    }
    Ok(Some(path))
}

/// Writes a secret to a file that must not exist yet (two engines starting at once on one data
/// dir: exactly one writes, the other reads what it wrote).
pub fn write_new_secret(path: &std::path::Path, secret: &str) -> std::io::Result<()> {
    write_file(path, secret, true)
}

fn write_secret(path: &std::path::Path, secret: &str) -> std::io::Result<()> {
    write_file(path, secret, false)
}

fn write_file(path: &std::path::Path, secret: &str, new: bool) -> std::io::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    if new {
        opts.write(true).create_new(true);
    } else {
        opts.write(true).create(true).truncate(true);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    #[cfg(unix)]
    {
        // An existing file keeps its old mode through open(): set it explicitly.
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    f.write_all(secret.as_bytes())?;
    f.write_all(b"\n")?;
    f.sync_all()
}
