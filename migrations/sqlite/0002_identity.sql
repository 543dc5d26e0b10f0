-- Identity: users, sessions, the audit log, single-use mail tokens, brute-force counters,
-- and engine-wide settings (the master key's check value). Timestamps are fixed-width UTC
-- text (see storage/timestamp.rs). Foreign keys stay inside auth.db, where SQLite enforces them.

CREATE TABLE IF NOT EXISTS engine.settings (
    name       TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    created_at TEXT NOT NULL
);

-- email keeps the address as written; email_normalized (lower-cased) is what must be unique.
CREATE TABLE IF NOT EXISTS auth.users (
    id               TEXT PRIMARY KEY,
    email            TEXT NOT NULL,
    email_normalized TEXT NOT NULL UNIQUE,
    email_verified   BOOLEAN NOT NULL DEFAULT FALSE,
    display_name     TEXT,
    disabled         BOOLEAN NOT NULL DEFAULT FALSE,
    roles            TEXT NOT NULL DEFAULT '[]',
    metadata         TEXT NOT NULL DEFAULT '{}',
    password_hash    TEXT,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL
);

-- id is public (admin API, OIDC sid); the cookie carries a separate 256-bit secret whose
-- SHA-256 is token_hash.
CREATE TABLE IF NOT EXISTS auth.sessions (
    id              TEXT PRIMARY KEY,
    token_hash      TEXT NOT NULL UNIQUE,
    user_id         TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    csrf_token      TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    last_seen_at    TEXT NOT NULL,
    expires_at      TEXT NOT NULL,
    idle_expires_at TEXT NOT NULL,
    ip              TEXT,
    user_agent      TEXT,
    amr             TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX IF NOT EXISTS auth.sessions_user ON sessions (user_id);

-- Append-only: the triggers below refuse UPDATE and DELETE.
CREATE TABLE IF NOT EXISTS auth.audit (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    at         TEXT NOT NULL,
    actor      TEXT,
    action     TEXT NOT NULL,
    target     TEXT,
    ip         TEXT,
    request_id TEXT,
    details    TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS auth.audit_actor ON audit (actor, id);
CREATE INDEX IF NOT EXISTS auth.audit_action ON audit (action, id);
CREATE INDEX IF NOT EXISTS auth.audit_at ON audit (at);
CREATE TRIGGER IF NOT EXISTS auth.audit_no_update BEFORE UPDATE ON audit
BEGIN
    SELECT RAISE(ABORT, 'auth.audit is append-only');
END;
CREATE TRIGGER IF NOT EXISTS auth.audit_no_delete BEFORE DELETE ON audit
BEGIN
    SELECT RAISE(ABORT, 'auth.audit is append-only');
END;

-- Recovery and verification links: SHA-256 of the token, single use, short-lived.
CREATE TABLE IF NOT EXISTS auth.user_tokens (
    token_hash TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    purpose    TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    used_at    TEXT
);
CREATE INDEX IF NOT EXISTS auth.user_tokens_user ON user_tokens (user_id);

-- Failed-login counters shared by every engine: key is 'account:<email>' or 'ip:<address>'.
CREATE TABLE IF NOT EXISTS auth.login_throttle (
    key               TEXT PRIMARY KEY,
    failures          INTEGER NOT NULL,
    window_started_at TEXT NOT NULL,
    last_failure_at   TEXT NOT NULL,
    locked_until      TEXT
);
