-- The OpenID provider's state. Everything a login ceremony or a token needs lives here, so any
-- number of engines behind a load balancer serve the same flows. Secrets the engine hands out
-- (challenges, codes, refresh tokens) are stored only as their SHA-256.

-- An authorization request parked while the browser goes through the login and consent flows.
-- stage: login -> consent -> done (or an error to send back to the client). browser_hash is
-- the SHA-256 of the assay_authz cookie of the browser that made it: only that browser may
-- sign in for it.
CREATE TABLE IF NOT EXISTS auth.oidc_auth_requests (
    challenge_hash TEXT PRIMARY KEY,
    client_id      TEXT NOT NULL REFERENCES oidc_clients(client_id) ON DELETE CASCADE,
    request        TEXT NOT NULL,
    browser_hash   TEXT NOT NULL,
    stage          TEXT NOT NULL,
    user_id        TEXT REFERENCES users(id) ON DELETE CASCADE,
    session_id     TEXT,
    auth_time      INTEGER,
    amr            TEXT,
    acr            TEXT,
    granted_scopes TEXT,
    remember       INTEGER NOT NULL DEFAULT 0,
    error          TEXT,
    created_at     TEXT NOT NULL,
    expires_at     TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS auth.oidc_auth_requests_expiry ON oidc_auth_requests (expires_at);

-- One row per authorization grant (a code exchange): refresh tokens and access tokens name it,
-- so revoking it (a replayed code, a reused refresh token, RFC 7009) ends all of them.
CREATE TABLE IF NOT EXISTS auth.oidc_grants (
    id         TEXT PRIMARY KEY,
    client_id  TEXT NOT NULL REFERENCES oidc_clients(client_id) ON DELETE CASCADE,
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    session_id TEXT,
    scopes     TEXT NOT NULL,
    claims     TEXT,
    created_at TEXT NOT NULL,
    revoked_at TEXT
);
CREATE INDEX IF NOT EXISTS auth.oidc_grants_user ON oidc_grants (user_id);
CREATE INDEX IF NOT EXISTS auth.oidc_grants_session ON oidc_grants (session_id);

CREATE TABLE IF NOT EXISTS auth.oidc_authorization_codes (
    code_hash      TEXT PRIMARY KEY,
    client_id      TEXT NOT NULL REFERENCES oidc_clients(client_id) ON DELETE CASCADE,
    user_id        TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    session_id     TEXT,
    redirect_uri   TEXT NOT NULL,
    scopes         TEXT NOT NULL,
    nonce          TEXT,
    code_challenge TEXT,
    auth_time      INTEGER NOT NULL,
    amr            TEXT NOT NULL,
    acr            TEXT,
    claims         TEXT,
    grant_id       TEXT,
    created_at     TEXT NOT NULL,
    expires_at     TEXT NOT NULL,
    used_at        TEXT
);
CREATE INDEX IF NOT EXISTS auth.oidc_codes_expiry ON oidc_authorization_codes (expires_at);

-- Refresh tokens, rotated on every use: used_at marks a spent one (accepted again only within
-- the grace window), revoked a family ended by reuse, logout or RFC 7009.
CREATE TABLE IF NOT EXISTS auth.oidc_refresh_tokens (
    token_hash TEXT PRIMARY KEY,
    grant_id   TEXT NOT NULL REFERENCES oidc_grants(id) ON DELETE CASCADE,
    client_id  TEXT NOT NULL REFERENCES oidc_clients(client_id) ON DELETE CASCADE,
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    scopes     TEXT NOT NULL,
    session_id TEXT,
    auth_time  INTEGER NOT NULL,
    amr        TEXT NOT NULL,
    acr        TEXT,
    claims     TEXT,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    used_at    TEXT,
    revoked    BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX IF NOT EXISTS auth.oidc_refresh_tokens_grant ON oidc_refresh_tokens (grant_id);

-- Access tokens revoked before their expiry (RFC 7009), by jti; rows go once the token expires.
CREATE TABLE IF NOT EXISTS auth.oidc_revoked_tokens (
    jti        TEXT PRIMARY KEY,
    expires_at TEXT NOT NULL
);

-- Remembered consent per (user, client): the scopes granted.
CREATE TABLE IF NOT EXISTS auth.oidc_consents (
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    client_id  TEXT NOT NULL REFERENCES oidc_clients(client_id) ON DELETE CASCADE,
    scopes     TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (user_id, client_id)
);

-- Which clients got an ID token in which browser session (sid = auth.sessions.id): a logout
-- of that session sends each of them a back-channel Logout Token.
CREATE TABLE IF NOT EXISTS auth.oidc_sessions (
    sid        TEXT NOT NULL,
    client_id  TEXT NOT NULL REFERENCES oidc_clients(client_id) ON DELETE CASCADE,
    user_id    TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (sid, client_id)
);

-- Logout Tokens waiting to be delivered: their claims, signed afresh at each attempt (a token
-- lives two minutes, retries go on for hours). A row survives restarts until it is delivered
-- or gives up, and next_attempt_at is the lease that keeps two engines from sending it twice.
CREATE TABLE IF NOT EXISTS auth.oidc_logout_deliveries (
    id              TEXT PRIMARY KEY,
    client_id       TEXT NOT NULL,
    uri             TEXT NOT NULL,
    claims          TEXT NOT NULL,
    alg             TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    last_error      TEXT,
    created_at      TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS auth.oidc_logout_deliveries_due ON oidc_logout_deliveries (next_attempt_at);
