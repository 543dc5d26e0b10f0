-- A client marked as a resource server (an API that checks bearer tokens) may introspect the
-- tokens issued to other clients; any other client sees only its own as active (RFC 7662 §4:
-- the server decides what a caller may learn). Its own column rather than a key in the
-- settings document, so an existing client is plainly not one until an operator says so.
ALTER TABLE auth.oidc_clients ADD COLUMN resource_server BOOLEAN NOT NULL DEFAULT FALSE;
