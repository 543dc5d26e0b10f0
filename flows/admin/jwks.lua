-- Admin API: the OpenID provider's signing keys.
--   GET  /auth/admin/auth/jwks           every published key (public material only)
--   POST /auth/admin/auth/jwks/rotate    body {"alg": "RS256" | "ES256" | "EdDSA"} (default RS256)
local http = require("assay.http")
local jwks = require("assay.jwks")
local audit = require("assay.audit")
local admin = require("assay.admin")

local BASE = "/auth/admin/auth/jwks"

http.route("GET", BASE, function(req)
  local who, err = admin.require(req)
  if not who then return admin.fail(err) end
  return http.json({ keys = jwks.keys() }):header("Cache-Control", "no-store")
end)

http.route("POST", BASE .. "/rotate", function(req)
  local who, err = admin.require(req)
  if not who then return admin.fail(err) end
  local alg = "RS256"
  if req.body ~= "" then
    local body, err = req:json()
    if not body then return admin.error(400, "invalid_request", "the body is not valid JSON") end
    if type(body) ~= "table" then return admin.error(400, "invalid_request", "the body must be a JSON object") end
    if body.alg ~= nil then
      if type(body.alg) ~= "string" then return admin.error(422, "invalid_field", "alg: must be a string") end
      alg = body.alg
    end
  end
  local kid, err = jwks.rotate(alg)
  if not kid then return admin.fail(err) end
  audit.append({ action = "jwks.rotate", actor = who.actor, target = kid, details = { alg = alg } })
  for _, k in ipairs(jwks.keys()) do
    if k.kid == kid then return http.json(k, 201) end
  end
  return admin.error(500, "server_error", "the new key is not listed")
end)
