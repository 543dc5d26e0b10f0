//! Leaf: secrets written to files (the master key, the first admin key), mode 0600 and synced.
//! No domain, Lua or HTTP imports.

use std::io::Write;

/// Writes a secret to a file that must not exist yet (two engines starting at once on one data
/// dir: exactly one writes, the other reads what it wrote).
pub fn write_new_secret(path: &std::path::Path, secret: &str) -> std::io::Result<()> {
    write_file(path, secret, true)
}

pub fn write_secret(path: &std::path::Path, secret: &str) -> std::io::Result<()> {
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
