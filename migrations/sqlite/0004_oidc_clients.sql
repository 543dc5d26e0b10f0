-- Relying parties registered with the OpenID provider. The secret is kept only as an
-- HMAC-SHA-256 under a key derived from the master key (it is 256 random bits: a slow hash
-- would buy nothing and cap the token endpoint); public clients have none. Every other
-- setting (redirect URIs, scopes, grant types, auth method, PKCE, logout URIs, signing
-- algorithm) is one JSON document, validated by the engine before it is written.
CREATE TABLE IF NOT EXISTS auth.oidc_clients (
    client_id   TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    secret_hash TEXT,
    settings    TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
