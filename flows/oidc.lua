-- The OpenID provider's protocol endpoints. The protocol itself is Rust (assay.oidc); this file
-- only puts it at its paths, so an operator can wrap an endpoint (add a header, log, refuse a
-- client) by overriding this file.
--   GET       /.well-known/openid-configuration, /auth/.well-known/openid-configuration
--   GET POST  /auth/authorize        the authorization endpoint (code flow, PKCE)
--   GET       /auth/authorize/resume where the login and consent flows send the browser back
--   POST      /auth/token            authorization_code, refresh_token, client_credentials
--   GET POST  /auth/userinfo
--   POST      /auth/oauth2/revoke, /auth/oauth2/introspect   (RFC 7009, RFC 7662)
--   GET POST  /auth/oauth2/sessions/logout                   (RP-initiated logout)
local http = require("assay.http")
local oidc = require("assay.oidc")

local function discovery()
  return http.json(oidc.discovery())
    :header("Cache-Control", "public, max-age=300")
    :header("Access-Control-Allow-Origin", "*")
end

http.route("GET", "/.well-known/openid-configuration", discovery)
http.route("GET", "/auth/.well-known/openid-configuration", discovery)
http.route("GET", "/auth/authorize", oidc.authorize)
http.route("POST", "/auth/authorize", oidc.authorize)
http.route("GET", "/auth/authorize/resume", oidc.resume)
http.route("POST", "/auth/token", oidc.token)
http.route("GET", "/auth/userinfo", oidc.userinfo)
http.route("POST", "/auth/userinfo", oidc.userinfo)
http.route("POST", "/auth/oauth2/revoke", oidc.revoke)
http.route("POST", "/auth/oauth2/introspect", oidc.introspect)
http.route("GET", "/auth/oauth2/sessions/logout", oidc.end_session)
http.route("POST", "/auth/oauth2/sessions/logout", oidc.end_session)

-- CORS preflights for browser-based clients (the endpoints above use no cookies).
local function preflight()
  return http.status(204)
    :header("Access-Control-Allow-Origin", "*")
    :header("Access-Control-Allow-Methods", "GET, POST")
    :header("Access-Control-Allow-Headers", "Authorization, Content-Type")
    :header("Access-Control-Max-Age", "600")
end
for _, path in ipairs({ "/auth/token", "/auth/userinfo", "/auth/oauth2/revoke" }) do
  http.route("OPTIONS", path, preflight)
end
