//! `auth.users`: the user row, its column list ([`COLUMNS`]) and its mapping ([`from_row`]),
//! which every query that joins users reads through, and the statements on the table.

use serde::Serialize;
use sqlx::Row;

use crate::storage::{json_column, rfc3339, Db, Page, Timestamp};
use crate::with_pool;

/// A user as every caller sees it: no password hash, only whether there is one.
#[derive(Debug, Clone, Serialize)]
pub struct User {
    pub id: String,
    pub email: String,
    pub email_verified: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    pub disabled: bool,
    pub roles: Vec<String>,
    pub metadata: serde_json::Value,
    pub has_password: bool,
    pub created_at: String,
    pub updated_at: String,
}

impl User {
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }
}

/// The columns [`from_row`] reads, in the order every user query selects them.
pub const COLUMNS: &str = "id, email, email_verified, display_name, disabled, roles, metadata, password_hash, created_at, updated_at";

/// [`COLUMNS`] qualified with a table alias (`u.id, u.email, ...`), for queries that join users.
pub fn columns_of(alias: &str) -> String {
    COLUMNS.split(", ").map(|c| format!("{alias}.{c}")).collect::<Vec<_>>().join(", ")
}

/// A user and its password hash from a row holding [`COLUMNS`]. The hash goes only to password
/// checks; a corrupt `roles` or `metadata` is an error, never an empty value.
pub(crate) fn from_row<R: Row>(row: &R) -> Result<(User, Option<String>), sqlx::Error>
where
    for<'c> &'c str: sqlx::ColumnIndex<R>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<String>: sqlx::Decode<'r, R::Database>,
    for<'r> bool: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Timestamp: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let roles: String = row.try_get("roles")?;
    let metadata: String = row.try_get("metadata")?;
    let hash: Option<String> = row.try_get("password_hash")?;
    let user = User {
        id: row.try_get("id")?,
        email: row.try_get("email")?,
        email_verified: row.try_get("email_verified")?,
        display_name: row.try_get("display_name")?,
        disabled: row.try_get("disabled")?,
        roles: json_column("users.roles", &roles)?,
        metadata: json_column("users.metadata", &metadata)?,
        has_password: hash.is_some(),
        created_at: rfc3339(row.try_get("created_at")?),
        updated_at: rfc3339(row.try_get("updated_at")?),
    };
    Ok((user, hash))
}

/// A user's writable fields, already checked; `roles` and `metadata` are their JSON text.
pub struct Fields<'a> {
    pub email: &'a str,
    pub email_normalized: &'a str,
    pub email_verified: bool,
    pub display_name: Option<&'a str>,
    pub disabled: bool,
    pub roles: &'a str,
    pub metadata: &'a str,
}

#[derive(Clone)]
pub struct UserStore {
    db: Db,
}

/// Binds the writable fields in the places both the insert and the update name them ($2 to $8).
macro_rules! bind_fields {
    ($q:expr, $f:expr) => {
        $q.bind($f.email)
            .bind($f.email_normalized)
            .bind($f.email_verified)
            .bind($f.display_name)
            .bind($f.disabled)
            .bind($f.roles)
            .bind($f.metadata)
    };
}

impl UserStore {
    pub fn new(db: Db) -> UserStore {
        UserStore { db }
    }

    /// A new row; a taken email is the backend's unique violation, for the caller to name.
    pub async fn insert(&self, id: &str, f: &Fields<'_>, password_hash: Option<&str>, now: Timestamp) -> Result<(), sqlx::Error> {
        const INSERT: &str =
            "INSERT INTO auth.users (id, email, email_normalized, email_verified, display_name, disabled, roles, metadata, \
             password_hash, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)";
        with_pool!(&self.db, pool => bind_fields!(sqlx::query(INSERT).bind(id), f)
            .bind(password_hash)
            .bind(now)
            .execute(pool)
            .await
            .map(|_| ()))
    }

    /// The user whose `column` (`id` or `email_normalized`) is `value`, with its password hash.
    pub async fn find_by(&self, column: &'static str, value: &str) -> Result<Option<(User, Option<String>)>, sqlx::Error> {
        let sql = format!("SELECT {COLUMNS} FROM auth.users WHERE {column} = $1");
        Ok(with_pool!(&self.db, pool => {
            match sqlx::query(&sql).bind(value).fetch_optional(pool).await? {
                Some(row) => Some(from_row(&row)?),
                None => None,
            }
        }))
    }

    /// Rewrites every writable field; returns how many rows matched (0: no such user).
    pub async fn update(&self, id: &str, f: &Fields<'_>) -> Result<u64, sqlx::Error> {
        const UPDATE: &str = "UPDATE auth.users SET email = $2, email_normalized = $3, email_verified = $4, display_name = $5, \
             disabled = $6, roles = $7, metadata = $8, updated_at = $9 WHERE id = $1";
        with_pool!(&self.db, pool => bind_fields!(sqlx::query(UPDATE).bind(id), f)
            .bind(Timestamp::now())
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))
    }

    /// Returns how many rows went (0: no such user).
    pub async fn delete(&self, id: &str) -> Result<u64, sqlx::Error> {
        with_pool!(&self.db, pool => sqlx::query("DELETE FROM auth.users WHERE id = $1")
            .bind(id)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))
    }

    pub async fn set_password_hash(&self, id: &str, hash: &str) -> Result<(), sqlx::Error> {
        with_pool!(&self.db, pool => sqlx::query("UPDATE auth.users SET password_hash = $2, updated_at = $3 WHERE id = $1")
            .bind(id)
            .bind(hash)
            .bind(Timestamp::now())
            .execute(pool)
            .await
            .map(|_| ()))
    }

    /// Newest first, at most `limit`, after the `cursor` id; `q` matches email or display name
    /// (case-insensitive substring, `%` and `_` taken literally).
    pub async fn list(&self, q: Option<&str>, limit: i64, cursor: Option<&str>) -> Result<Page<User>, sqlx::Error> {
        let pattern = q.filter(|q| !q.trim().is_empty()).map(|q| format!("%{}%", escape_like(&q.trim().to_lowercase())));
        let sql = format!(
            "SELECT {COLUMNS} FROM auth.users WHERE ($1 IS NULL OR id < $1) \
             AND ($2 IS NULL OR email_normalized LIKE $2 ESCAPE '\\' OR lower(COALESCE(display_name, '')) LIKE $2 ESCAPE '\\') \
             ORDER BY id DESC LIMIT $3"
        );
        let users = with_pool!(&self.db, pool => {
            let rows = sqlx::query(&sql).bind(cursor).bind(&pattern).bind(limit + 1).fetch_all(pool).await?;
            rows.iter().map(|r| from_row(r).map(|(u, _)| u)).collect::<Result<Vec<User>, sqlx::Error>>()?
        });
        Ok(Page::from_overfetch("users", users, limit, |u| u.id.clone()))
    }
}

/// `%`, `_` and the escape character itself taken literally in a LIKE pattern.
fn escape_like(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    /// Joined queries select the user columns through `columns_of`; the text must stay the one
    /// they always sent.
    #[test]
    fn qualified_columns() {
        assert_eq!(
            super::columns_of("u"),
            "u.id, u.email, u.email_verified, u.display_name, u.disabled, u.roles, u.metadata, u.password_hash, u.created_at, u.updated_at"
        );
    }
}
