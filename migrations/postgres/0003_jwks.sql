-- Signing keys of the OpenID provider: one active key per algorithm and the retired ones,
-- which stay published in the JWKS until pruned so tokens they signed still verify.
-- private_key is the PKCS#8 key sealed with AES-256-GCM under a key derived from the master
-- key (the kid is the associated data); only the public JWK is stored in clear.
CREATE TABLE IF NOT EXISTS auth.jwks_keys (
    kid         TEXT PRIMARY KEY,
    alg         TEXT NOT NULL,
    status      TEXT NOT NULL,
    public_jwk  TEXT NOT NULL,
    private_key TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    retired_at  TIMESTAMPTZ
);
-- At most one active key per algorithm, whichever engine creates or rotates it.
CREATE UNIQUE INDEX IF NOT EXISTS jwks_keys_one_active ON auth.jwks_keys (alg) WHERE status = 'active';
