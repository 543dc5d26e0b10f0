-- The engine's own tables. The ledger (engine.migrations) is created by the migration runner
-- itself, before this file runs. Timestamps are fixed-width UTC text (see storage/timestamp.rs).

-- Runtime module switches: the row, not the build, decides whether a module serves.
CREATE TABLE IF NOT EXISTS engine.modules (
    name       TEXT PRIMARY KEY,
    enabled    BOOLEAN NOT NULL,
    updated_at TEXT NOT NULL
);

-- Admin API keys the engine generated (keys from [auth] admin_api_keys stay in the config).
-- Only a SHA-256 of each key is kept: they are 256-bit random, so a slow hash buys nothing.
CREATE TABLE IF NOT EXISTS engine.admin_api_keys (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL UNIQUE,
    key_hash     TEXT NOT NULL UNIQUE,
    created_at   TEXT NOT NULL,
    last_used_at TEXT
);
