-- Admin console, signing keys pane: the published keys and rotating to a new one.
-- Shared console code is in lib/console.lua.
local http = require("assay.http")
local json = require("assay.json")
local jwks = require("assay.jwks")
local audit = require("assay.audit")
local console = require("lib.console")
local errors = require("lib.errors")

local guard, render, actor = console.guard, console.render, console.actor

http.route("GET", "/auth/console/keys", function(req)
  local s, resp = guard(req)
  if not s then return resp end
  local keys = jwks.keys()
  for _, k in ipairs(keys) do
    k.jwk_text = json.encode(k.public_jwk, { pretty = true })
  end
  return render(req, s, "console/keys.html", { section = "keys", keys = keys, algs = { "RS256", "ES256", "EdDSA" } })
end)

http.route("POST", "/auth/console/keys/rotate", function(req)
  local s, resp = guard(req)
  if not s then return resp end
  local alg = req.form.alg or "RS256"
  local kid, err = jwks.rotate(alg)
  if not kid then
    if errors.code_of(err) == "invalid" then return http.redirect("/auth/console/keys?error=bad-alg", 303) end
    error(err)
  end
  audit.append({ action = "jwks.rotate", actor = actor(s), target = kid, details = { alg = alg } })
  return http.redirect("/auth/console/keys?notice=key-rotated", 303)
end)
