-- The claims hook: extra claims for ID tokens, access tokens and userinfo answers. The engine
-- calls the function this file returns once per token (and per userinfo answer) with
--   ctx.target      "id_token" | "access_token" | "userinfo"
--   ctx.user        the user (id, email, display_name, roles, metadata, ...), nil for
--                   client_credentials
--   ctx.client      { client_id, name }
--   ctx.scopes      the granted scopes, a list
--   ctx.grant_type  "authorization_code" | "refresh_token" | "client_credentials" | "userinfo"
-- and adds the claims of the table it returns (nil: none). The claims the protocol owns (iss,
-- sub, aud, exp, iat, nonce, sid, scope, ...) cannot be changed here.
--
-- Override this file in [flows] dir to add your own; Immich's role claim, for example:
--
--   return function(ctx)
--     if ctx.user == nil then return nil end
--     for _, r in ipairs(ctx.user.roles or {}) do
--       if r == "admin" then return { immich_role = "admin" } end
--     end
--     return { immich_role = "user" }
--   end
return function(ctx)
  return nil
end
