-- Identity: users, sessions, the audit log, single-use mail tokens, brute-force counters,
-- and engine-wide settings (the master key's check value).

CREATE TABLE IF NOT EXISTS engine.settings (
    name       TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);

-- email keeps the address as written; email_normalized (lower-cased) is what must be unique.
-- roles and metadata are JSON text on both backends so one SQL string serves both.
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
    created_at       TIMESTAMPTZ NOT NULL,
    updated_at       TIMESTAMPTZ NOT NULL
);

-- id is public (admin API, OIDC sid); the cookie carries a separate 256-bit secret whose
-- SHA-256 is token_hash.
CREATE TABLE IF NOT EXISTS auth.sessions (
    id              TEXT PRIMARY KEY,
    token_hash      TEXT NOT NULL UNIQUE,
    user_id         TEXT NOT NULL REFERENCES auth.users(id) ON DELETE CASCADE,
    csrf_token      TEXT NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL,
    last_seen_at    TIMESTAMPTZ NOT NULL,
    expires_at      TIMESTAMPTZ NOT NULL,
    idle_expires_at TIMESTAMPTZ NOT NULL,
    ip              TEXT,
    user_agent      TEXT,
    amr             TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX IF NOT EXISTS sessions_user ON auth.sessions (user_id);

-- Append-only: the triggers below refuse UPDATE and DELETE.
CREATE TABLE IF NOT EXISTS auth.audit (
    id         BIGSERIAL PRIMARY KEY,
    at         TIMESTAMPTZ NOT NULL,
    actor      TEXT,
    action     TEXT NOT NULL,
    target     TEXT,
    ip         TEXT,
    request_id TEXT,
    details    TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS audit_actor ON auth.audit (actor, id);
CREATE INDEX IF NOT EXISTS audit_action ON auth.audit (action, id);
CREATE INDEX IF NOT EXISTS audit_at ON auth.audit (at);

CREATE OR REPLACE FUNCTION auth.audit_is_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'auth.audit is append-only';
END;
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS audit_append_only ON auth.audit;
CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON auth.audit
    FOR EACH ROW EXECUTE FUNCTION auth.audit_is_append_only();

-- Recovery and verification links: SHA-256 of the token, single use, short-lived.
CREATE TABLE IF NOT EXISTS auth.user_tokens (
    token_hash TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES auth.users(id) ON DELETE CASCADE,
    purpose    TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    used_at    TIMESTAMPTZ
);
CREATE INDEX IF NOT EXISTS user_tokens_user ON auth.user_tokens (user_id);

-- Failed-login counters shared by every engine: key is 'account:<email>' or 'ip:<address>'.
CREATE TABLE IF NOT EXISTS auth.login_throttle (
    key               TEXT PRIMARY KEY,
    failures          BIGINT NOT NULL,
    window_started_at TIMESTAMPTZ NOT NULL,
    last_failure_at   TIMESTAMPTZ NOT NULL,
    locked_until      TIMESTAMPTZ
);
