//! `engine.settings`, as far as identity uses it: the master key's check value, written by the
//! first engine on a database and compared by every later one.

use crate::storage::{Db, Timestamp};
use crate::with_pool;

#[derive(Clone)]
pub struct SettingsStore {
    db: Db,
}

impl SettingsStore {
    pub fn new(db: Db) -> SettingsStore {
        SettingsStore { db }
    }

    /// Stores `value` under `name` unless a value is there already, and returns the stored one:
    /// of engines starting at once on one database, the first to write wins for all.
    pub async fn first_value(&self, name: &str, value: &str) -> Result<String, sqlx::Error> {
        with_pool!(&self.db, pool => {
            sqlx::query("INSERT INTO engine.settings (name, value, created_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING")
                .bind(name)
                .bind(value)
                .bind(Timestamp::now())
                .execute(pool)
                .await?;
            sqlx::query_scalar::<_, String>("SELECT value FROM engine.settings WHERE name = $1")
                .bind(name)
                .fetch_one(pool)
                .await
        })
    }
}
