//! The two migration folders are parallel copies: this file migrates a fresh database on each
//! backend with the engine's `migrate` command, reads both schemas back from the databases
//! themselves, and compares them table by table and column by column (names, nullability,
//! primary keys, foreign keys, indexes and uniqueness, types by family). Every difference is
//! listed at once.
//!
//! Type families (declared type -> family):
//!
//! | family    | SQLite declared type (affinity rules)        | PostgreSQL `data_type`                              |
//! | --------- | -------------------------------------------- | --------------------------------------------------- |
//! | integer   | contains `INT`                               | smallint, integer, bigint                           |
//! | text      | contains `CHAR`, `CLOB` or `TEXT`            | text, character varying, character                  |
//! | boolean   | contains `BOOL`                              | boolean                                             |
//! | timestamp | contains `TIMESTAMP`, `DATETIME` or is `DATE`| timestamp with(out) time zone, date                 |
//! | bytes     | contains `BLOB`, or no type                  | bytea                                               |
//! | real      | contains `REAL`, `FLOA` or `DOUB`            | real, double precision, numeric                     |
//! | json      | contains `JSON`                              | json, jsonb                                         |
//!
//! Anything else is `other(<declared type>)` and only matches itself. One cross-family pair
//! is accepted by design: a SQLite `text` column matches a PostgreSQL `timestamp` column,
//! because SQLite has no time type and the engine stores `Timestamp` there as fixed-width UTC
//! text (runtime/src/storage/timestamp.rs). The ledger `engine.migrations` is compared like
//! any other table: the two bootstraps in `migrate.rs` agree under these rules.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use sqlx::Row;

use crate::harness::*;

/// The schemas the engine owns, on both backends.
const SCHEMAS: [&str; 2] = ["engine", "auth"];

/// Differences the comparison reports that are known and accepted, each with the reason. An
/// entry that no longer shows up fails the test too, so the list cannot outlive its cause.
const ALLOWED: &[(&str, &str)] = &[(
    "auth.oidc_auth_requests.remember: type integer on sqlite, boolean on postgres",
    // Only the declared type differs: SQLite stores a BOOLEAN as the integer 0 or 1 too, and
    // the engine binds and reads a Rust bool on both. Changing it would mean rebuilding the
    // table on SQLite (no ALTER COLUMN there) for no change in what is stored or read.
    "SQLite keeps booleans as 0/1 integers whatever the declared type",
)];

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Family {
    Integer,
    Text,
    Boolean,
    Timestamp,
    Bytes,
    Real,
    Json,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Type {
    Is(Family),
    Other(String),
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Type::Is(family) => write!(f, "{}", format!("{family:?}").to_lowercase()),
            Type::Other(declared) => write!(f, "other({declared})"),
        }
    }
}

/// SQLite's declared type, by its affinity rules (https://sqlite.org/datatype3.html §3.1),
/// refined where the declared name says more than the affinity (BOOLEAN, TIMESTAMP, JSON).
fn sqlite_family(declared: &str) -> Type {
    let d = declared.to_uppercase();
    let family = if d.contains("BOOL") {
        Family::Boolean
    } else if d.contains("INT") {
        Family::Integer
    } else if d.contains("JSON") {
        Family::Json
    } else if d.contains("TIMESTAMP") || d.contains("DATETIME") || d == "DATE" {
        Family::Timestamp
    } else if d.contains("CHAR") || d.contains("CLOB") || d.contains("TEXT") {
        Family::Text
    } else if d.is_empty() || d.contains("BLOB") {
        Family::Bytes
    } else if d.contains("REAL") || d.contains("FLOA") || d.contains("DOUB") {
        Family::Real
    } else {
        return Type::Other(declared.to_string());
    };
    Type::Is(family)
}

/// PostgreSQL's `information_schema.columns.data_type`.
fn postgres_family(data_type: &str) -> Type {
    let family = match data_type {
        "smallint" | "integer" | "bigint" => Family::Integer,
        "text" | "character varying" | "character" => Family::Text,
        "boolean" => Family::Boolean,
        "timestamp with time zone" | "timestamp without time zone" | "date" => Family::Timestamp,
        "bytea" => Family::Bytes,
        "real" | "double precision" | "numeric" => Family::Real,
        "json" | "jsonb" => Family::Json,
        other => return Type::Other(other.to_string()),
    };
    Type::Is(family)
}

/// Whether a SQLite column type and a PostgreSQL one agree (see the module comment).
fn types_agree(sqlite: &Type, postgres: &Type) -> bool {
    sqlite == postgres || (*sqlite == Type::Is(Family::Text) && *postgres == Type::Is(Family::Timestamp))
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Column {
    nullable: bool,
    ty: Type,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct ForeignKey {
    columns: Vec<String>,
    /// The referenced table, in the same schema (SQLite cannot reference across files).
    table: String,
    references: Vec<String>,
    on_delete: String,
}

impl fmt::Display for ForeignKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "foreign key ({}) -> {}({}) on delete {}",
            self.columns.join(", "),
            self.table,
            self.references.join(", "),
            self.on_delete
        )
    }
}

/// An index other than the primary key's. UNIQUE constraints are unique indexes on both
/// backends, so comparing these sets compares the uniqueness sets too; names are ignored.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Index {
    columns: Vec<String>,
    unique: bool,
    /// The WHERE of a partial index, normalised by [`normalise_predicate`].
    predicate: Option<String>,
}

impl fmt::Display for Index {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}index ({})", if self.unique { "unique " } else { "" }, self.columns.join(", "))?;
        if let Some(p) = &self.predicate {
            write!(f, " where {p}")?;
        }
        Ok(())
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Table {
    columns: BTreeMap<String, Column>,
    primary_key: Vec<String>,
    foreign_keys: BTreeSet<ForeignKey>,
    indexes: BTreeSet<Index>,
}

/// `schema.table` -> table.
type Schema = BTreeMap<String, Table>;

/// Lower case, no casts (`'active'::text`), no parentheses, single spaces: what PostgreSQL's
/// `pg_get_expr` and SQLite's stored CREATE INDEX text have in common.
fn normalise_predicate(p: &str) -> String {
    let mut s = p.to_lowercase().replace(['(', ')'], " ");
    while let Some(at) = s.find("::") {
        let end = s[at + 2..].find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).map_or(s.len(), |n| at + 2 + n);
        s.replace_range(at..end, "");
    }
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Every difference between the two schemas, one readable line each.
fn differences(sqlite: &Schema, postgres: &Schema) -> Vec<String> {
    let mut out = Vec::new();
    let names: BTreeSet<&String> = sqlite.keys().chain(postgres.keys()).collect();
    for name in names {
        let (s, p) = match (sqlite.get(name), postgres.get(name)) {
            (Some(s), Some(p)) => (s, p),
            (Some(_), None) => {
                out.push(format!("{name}: table only on sqlite"));
                continue;
            }
            (None, _) => {
                out.push(format!("{name}: table only on postgres"));
                continue;
            }
        };
        let columns: BTreeSet<&String> = s.columns.keys().chain(p.columns.keys()).collect();
        for col in columns {
            match (s.columns.get(col), p.columns.get(col)) {
                (Some(sc), Some(pc)) => {
                    if !types_agree(&sc.ty, &pc.ty) {
                        out.push(format!("{name}.{col}: type {} on sqlite, {} on postgres", sc.ty, pc.ty));
                    }
                    if sc.nullable != pc.nullable {
                        let null = |n: bool| if n { "nullable" } else { "NOT NULL" };
                        out.push(format!("{name}.{col}: {} on sqlite, {} on postgres", null(sc.nullable), null(pc.nullable)));
                    }
                }
                (Some(_), None) => out.push(format!("{name}: column {col} only on sqlite")),
                (None, _) => out.push(format!("{name}: column {col} only on postgres")),
            }
        }
        if s.primary_key != p.primary_key {
            out.push(format!("{name}: primary key ({}) on sqlite, ({}) on postgres", s.primary_key.join(", "), p.primary_key.join(", ")));
        }
        for fk in s.foreign_keys.difference(&p.foreign_keys) {
            out.push(format!("{name}: {fk} only on sqlite"));
        }
        for fk in p.foreign_keys.difference(&s.foreign_keys) {
            out.push(format!("{name}: {fk} only on postgres"));
        }
        for ix in s.indexes.difference(&p.indexes) {
            out.push(format!("{name}: {ix} only on sqlite"));
        }
        for ix in p.indexes.difference(&s.indexes) {
            out.push(format!("{name}: {ix} only on postgres"));
        }
    }
    out
}

/// Differences left after the allow-list, plus allow-list entries that no longer occur.
fn unexplained(found: &[String]) -> Vec<String> {
    let mut out: Vec<String> = found.iter().filter(|d| !ALLOWED.iter().any(|(a, _)| a == d)).cloned().collect();
    for (allowed, _) in ALLOWED {
        if !found.iter().any(|d| d == allowed) {
            out.push(format!("allow-list entry no longer occurs (remove it): {allowed}"));
        }
    }
    out
}

/// A fresh database on `backend` with every migration applied by the engine's own command.
async fn migrated(backend: Backend) -> TestDb {
    let db = TestDb::new(backend).await;
    let config = Setup::new(&db).write("engine.toml").display().to_string();
    let (code, out, err) = run_cli(&["migrate", "--config", &config], db.dir.path());
    assert_eq!(code, 0, "migrate on {backend:?} failed:\n{out}{err}");
    db
}

async fn read_sqlite(db: &TestDb) -> Schema {
    let pool = db.sqlite_pool().await;
    let mut schema = Schema::new();
    for s in SCHEMAS {
        let tables: Vec<String> = sqlx::query_scalar(&format!(
            "SELECT name FROM \"{s}\".sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name"
        ))
        .fetch_all(&pool)
        .await
        .expect("sqlite tables");
        for t in tables {
            let mut table = Table::default();
            let mut pk: Vec<(i64, String)> = Vec::new();
            for r in sqlx::query("SELECT * FROM pragma_table_info($1, $2)").bind(&t).bind(s).fetch_all(&pool).await.expect("table_info") {
                let name: String = r.get("name");
                let pk_pos: i64 = r.get("pk");
                let notnull: i64 = r.get("notnull");
                if pk_pos > 0 {
                    pk.push((pk_pos, name.clone()));
                }
                // SQLite lets a primary-key column of a rowid table hold NULL unless it is the
                // INTEGER PRIMARY KEY (a documented legacy quirk). The engine binds every key
                // from Rust, never NULL, so a key column counts as NOT NULL as on PostgreSQL.
                let nullable = notnull == 0 && pk_pos == 0;
                table.columns.insert(name, Column { nullable, ty: sqlite_family(&r.get::<String, _>("type")) });
            }
            pk.sort();
            table.primary_key = pk.into_iter().map(|(_, c)| c).collect();

            let mut fks: BTreeMap<i64, ForeignKey> = BTreeMap::new();
            let rows = sqlx::query("SELECT * FROM pragma_foreign_key_list($1, $2) ORDER BY id, seq")
                .bind(&t)
                .bind(s)
                .fetch_all(&pool)
                .await
                .expect("foreign_key_list");
            for r in rows {
                let fk = fks.entry(r.get("id")).or_insert_with(|| ForeignKey {
                    columns: Vec::new(),
                    table: r.get("table"),
                    references: Vec::new(),
                    on_delete: r.get("on_delete"),
                });
                fk.columns.push(r.get("from"));
                // `to` is NULL when the clause names only the table (its primary key).
                fk.references.push(r.get::<Option<String>, _>("to").unwrap_or_else(|| "<primary key>".into()));
            }
            table.foreign_keys = fks.into_values().collect();

            for r in sqlx::query("SELECT * FROM pragma_index_list($1, $2)").bind(&t).bind(s).fetch_all(&pool).await.expect("index_list") {
                let origin: String = r.get("origin");
                if origin == "pk" {
                    continue;
                }
                let index: String = r.get("name");
                let columns = sqlx::query("SELECT * FROM pragma_index_info($1, $2) ORDER BY seqno")
                    .bind(&index)
                    .bind(s)
                    .fetch_all(&pool)
                    .await
                    .expect("index_info")
                    .iter()
                    .map(|c| c.get::<Option<String>, _>("name").unwrap_or_else(|| "<expression>".into()))
                    .collect();
                let predicate = if r.get::<i64, _>("partial") != 0 {
                    let sql: String =
                        sqlx::query_scalar(&format!("SELECT sql FROM \"{s}\".sqlite_master WHERE type = 'index' AND name = $1"))
                            .bind(&index)
                            .fetch_one(&pool)
                            .await
                            .expect("index sql");
                    let at = sql.to_uppercase().rfind(" WHERE ").expect("a partial index has a WHERE");
                    Some(normalise_predicate(&sql[at + 7..]))
                } else {
                    None
                };
                table.indexes.insert(Index { columns, unique: r.get::<i64, _>("unique") != 0, predicate });
            }
            schema.insert(format!("{s}.{t}"), table);
        }
    }
    pool.close().await;
    schema
}

async fn read_postgres(db: &TestDb) -> Schema {
    let pool = sqlx::PgPool::connect(db.pg_url.as_deref().expect("postgres url")).await.expect("connect");
    let mut schema = Schema::new();
    let owned = "table_schema IN ('engine', 'auth')";
    let tables = sqlx::query(&format!(
        "SELECT table_schema::text AS s, table_name::text AS t FROM information_schema.tables WHERE {owned} AND table_type = 'BASE TABLE'"
    ))
    .fetch_all(&pool)
    .await
    .expect("tables");
    for r in tables {
        schema.insert(format!("{}.{}", r.get::<String, _>("s"), r.get::<String, _>("t")), Table::default());
    }
    let key = |r: &sqlx::postgres::PgRow| format!("{}.{}", r.get::<String, _>("s"), r.get::<String, _>("t"));

    let columns = sqlx::query(&format!(
        "SELECT table_schema::text AS s, table_name::text AS t, column_name::text AS c, is_nullable::text AS n, data_type::text AS d \
         FROM information_schema.columns WHERE {owned}"
    ))
    .fetch_all(&pool)
    .await
    .expect("columns");
    for r in columns {
        if let Some(table) = schema.get_mut(&key(&r)) {
            let column = Column { nullable: r.get::<String, _>("n") == "YES", ty: postgres_family(&r.get::<String, _>("d")) };
            table.columns.insert(r.get("c"), column);
        }
    }

    let pk = sqlx::query(
        "SELECT k.table_schema::text AS s, k.table_name::text AS t, k.column_name::text AS c \
         FROM information_schema.table_constraints c JOIN information_schema.key_column_usage k \
           ON k.constraint_schema = c.constraint_schema AND k.constraint_name = c.constraint_name \
         WHERE c.constraint_type = 'PRIMARY KEY' AND c.table_schema IN ('engine', 'auth') \
         ORDER BY 1, 2, k.ordinal_position",
    )
    .fetch_all(&pool)
    .await
    .expect("primary keys");
    for r in pk {
        if let Some(table) = schema.get_mut(&key(&r)) {
            table.primary_key.push(r.get("c"));
        }
    }

    let fks = sqlx::query(
        "SELECT k.table_schema::text AS s, k.table_name::text AS t, k.constraint_name::text AS name, k.column_name::text AS c, \
                u.table_schema::text AS ref_s, u.table_name::text AS ref_t, u.column_name::text AS ref_c, rc.delete_rule::text AS on_delete \
         FROM information_schema.referential_constraints rc \
         JOIN information_schema.key_column_usage k \
           ON k.constraint_schema = rc.constraint_schema AND k.constraint_name = rc.constraint_name \
         JOIN information_schema.key_column_usage u \
           ON u.constraint_schema = rc.unique_constraint_schema AND u.constraint_name = rc.unique_constraint_name \
          AND u.ordinal_position = k.position_in_unique_constraint \
         WHERE k.table_schema IN ('engine', 'auth') \
         ORDER BY 1, 2, 3, k.ordinal_position",
    )
    .fetch_all(&pool)
    .await
    .expect("foreign keys");
    let mut grouped: BTreeMap<(String, String), ForeignKey> = BTreeMap::new();
    for r in fks {
        let (s, ref_s): (String, String) = (r.get("s"), r.get("ref_s"));
        // SQLite cannot express a reference into the other file; show one if it ever appears.
        let ref_t: String = r.get("ref_t");
        let table = if ref_s == s { ref_t } else { format!("{ref_s}.{ref_t}") };
        let fk = grouped.entry((key(&r), r.get("name"))).or_insert_with(|| ForeignKey {
            columns: Vec::new(),
            table,
            references: Vec::new(),
            on_delete: r.get("on_delete"),
        });
        fk.columns.push(r.get("c"));
        fk.references.push(r.get("ref_c"));
    }
    for ((table, _), fk) in grouped {
        if let Some(table) = schema.get_mut(&table) {
            table.foreign_keys.insert(fk);
        }
    }

    let indexes = sqlx::query(
        "SELECT n.nspname::text AS s, t.relname::text AS t, ix.indisunique AS uniq, pg_get_expr(ix.indpred, ix.indrelid) AS pred, \
                (SELECT string_agg(COALESCE(a.attname::text, '<expression>'), ',' ORDER BY k.ord) \
                   FROM unnest(ix.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord) \
                   LEFT JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum) AS cols \
         FROM pg_index ix JOIN pg_class t ON t.oid = ix.indrelid JOIN pg_namespace n ON n.oid = t.relnamespace \
         WHERE n.nspname IN ('engine', 'auth') AND NOT ix.indisprimary",
    )
    .fetch_all(&pool)
    .await
    .expect("indexes");
    for r in indexes {
        if let Some(table) = schema.get_mut(&key(&r)) {
            let columns = r.get::<String, _>("cols").split(',').map(str::to_string).collect();
            let predicate = r.get::<Option<String>, _>("pred").map(|p| normalise_predicate(&p));
            table.indexes.insert(Index { columns, unique: r.get("uniq"), predicate });
        }
    }
    pool.close().await;
    schema
}

/// Both backends migrated by the engine end with the same schema. Each run also proves the
/// readers see drift: it changes its own backend's copy after migrating and expects exactly
/// those changes back as differences.
pub async fn migrated_schemas_agree(b: Backend) {
    let (sqlite_db, postgres_db) = (migrated(Backend::Sqlite).await, migrated(Backend::Postgres).await);
    let (sqlite, postgres) = (read_sqlite(&sqlite_db).await, read_postgres(&postgres_db).await);
    assert!(sqlite.len() >= 19 && sqlite.contains_key("engine.migrations") && sqlite.contains_key("auth.users"), "{sqlite:#?}");
    assert!(postgres.len() >= 19 && postgres.contains_key("engine.migrations") && postgres.contains_key("auth.users"), "{postgres:#?}");
    let found = differences(&sqlite, &postgres);
    let left = unexplained(&found);
    assert!(left.is_empty(), "the migrated schemas differ ({} unexplained):\n  {}", left.len(), left.join("\n  "));

    // Drift on this run's backend, made in its throwaway database, never in the migration files.
    let (drifted, expected): (Vec<String>, &[&str]) = match b {
        Backend::Sqlite => {
            for sql in [
                "DROP INDEX auth.sessions_user",
                "CREATE UNIQUE INDEX auth.users_email ON users (email)",
                "ALTER TABLE auth.users ADD COLUMN nickname TEXT",
            ] {
                sqlite_db.exec(sql).await;
            }
            (
                differences(&read_sqlite(&sqlite_db).await, &postgres),
                &[
                    "auth.sessions: index (user_id) only on postgres",
                    "auth.users: unique index (email) only on sqlite",
                    "auth.users: column nickname only on sqlite",
                ],
            )
        }
        Backend::Postgres => {
            for sql in [
                "DROP INDEX auth.sessions_user",
                "ALTER TABLE auth.users ALTER COLUMN display_name SET NOT NULL",
                "ALTER TABLE auth.login_throttle ALTER COLUMN failures TYPE TEXT",
                "ALTER TABLE auth.user_tokens DROP CONSTRAINT user_tokens_user_id_fkey",
            ] {
                postgres_db.exec(sql).await;
            }
            (
                differences(&sqlite, &read_postgres(&postgres_db).await),
                &[
                    "auth.sessions: index (user_id) only on sqlite",
                    "auth.users.display_name: nullable on sqlite, NOT NULL on postgres",
                    "auth.login_throttle.failures: type integer on sqlite, text on postgres",
                    "auth.user_tokens: foreign key (user_id) -> users(id) on delete CASCADE only on sqlite",
                ],
            )
        }
    };
    let left = unexplained(&drifted);
    for e in expected {
        assert!(left.iter().any(|d| d == e), "drift not reported: {e}\nreported:\n  {}", left.join("\n  "));
    }
    assert_eq!(left.len(), expected.len(), "reported:\n  {}", left.join("\n  "));
}

/// The comparison on two hand-made models: every kind of difference, all of them listed.
#[test]
fn comparison_lists_every_difference() {
    let col = |nullable, ty| Column { nullable, ty };
    let mut users = Table::default();
    users.columns.insert("id".into(), col(false, sqlite_family("TEXT")));
    users.columns.insert("created_at".into(), col(false, sqlite_family("TEXT")));
    users.columns.insert("n".into(), col(true, sqlite_family("INTEGER")));
    users.primary_key = vec!["id".into()];
    users.indexes.insert(Index { columns: vec!["n".into()], unique: false, predicate: None });
    let sqlite: Schema = [("auth.users".to_string(), users.clone()), ("auth.only_here".to_string(), Table::default())].into();

    // Timestamps as text on SQLite agree with timestamptz; BIGINT and INTEGER are one family.
    let mut same = users.clone();
    same.columns.insert("created_at".into(), col(false, postgres_family("timestamp with time zone")));
    same.columns.insert("n".into(), col(true, postgres_family("bigint")));
    let agree: Schema = [("auth.users".to_string(), same), ("auth.only_here".to_string(), Table::default())].into();
    assert_eq!(differences(&sqlite, &agree), Vec::<String>::new());

    let mut pg = users.clone();
    pg.columns.insert("n".into(), col(false, postgres_family("boolean")));
    pg.columns.insert("extra".into(), col(true, postgres_family("jsonb")));
    pg.primary_key = vec!["id".into(), "n".into()];
    pg.indexes.clear();
    pg.indexes.insert(Index { columns: vec!["n".into()], unique: true, predicate: Some(normalise_predicate("(n = 'x'::text)")) });
    pg.foreign_keys.insert(ForeignKey {
        columns: vec!["n".into()],
        table: "other".into(),
        references: vec!["id".into()],
        on_delete: "CASCADE".into(),
    });
    let postgres: Schema = [("auth.users".to_string(), pg), ("auth.only_there".to_string(), Table::default())].into();

    let found = differences(&sqlite, &postgres);
    let expected = [
        "auth.only_here: table only on sqlite",
        "auth.only_there: table only on postgres",
        "auth.users: column extra only on postgres",
        "auth.users.n: type integer on sqlite, boolean on postgres",
        "auth.users.n: nullable on sqlite, NOT NULL on postgres",
        "auth.users: primary key (id) on sqlite, (id, n) on postgres",
        "auth.users: foreign key (n) -> other(id) on delete CASCADE only on postgres",
        "auth.users: index (n) only on sqlite",
        "auth.users: unique index (n) where n = 'x' only on postgres",
    ];
    assert_eq!(found, expected, "{found:#?}");

    // Predicates as each backend writes them compare equal.
    assert_eq!(normalise_predicate("(status = 'active'::text)"), normalise_predicate("status = 'active'"));
    assert_eq!(sqlite_family("BIGINT"), Type::Is(Family::Integer));
    assert_eq!(sqlite_family("BOOLEAN"), Type::Is(Family::Boolean));
    assert_eq!(postgres_family("inet"), Type::Other("inet".into()));
}
