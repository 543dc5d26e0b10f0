-- Admin API: the OpenID provider's clients (relying parties).
--   GET    /auth/admin/auth/oidc-clients?limit=&cursor=
--   POST   /auth/admin/auth/oidc-clients                        201, client_secret shown once
--   GET    /auth/admin/auth/oidc-clients/{client_id}
--   PATCH  /auth/admin/auth/oidc-clients/{client_id}
--   DELETE /auth/admin/auth/oidc-clients/{client_id}            204
--   POST   /auth/admin/auth/oidc-clients/{client_id}/rotate-secret   new secret, shown once
local http = require("assay.http")
local json = require("assay.json")
local oidc = require("assay.oidc")
local audit = require("assay.audit")
local admin = require("assay.admin")

local BASE = "/auth/admin/auth/oidc-clients"

local function json_body(req)
  local body = req:json()
  if body == nil then return nil, admin.error(400, "invalid_request", "the body is not valid JSON") end
  if type(body) ~= "table" then return nil, admin.error(400, "invalid_request", "the body must be a JSON object") end
  return body
end

local function secret_answer(t, status)
  return http.json(t, status):header("Cache-Control", "no-store"):header("Pragma", "no-cache")
end

http.route("GET", BASE, function(req)
  local who, err = admin.require(req)
  if not who then return admin.fail(err) end
  local paging, bad = admin.paging(req)
  if not paging then return bad end
  local page, err = oidc.list_clients(paging)
  if not page then return admin.fail(err) end
  local clients = json.array()
  for i, c in ipairs(page.clients) do clients[i] = c end
  return http.json({ clients = clients, next_cursor = page.next_cursor or json.null }):header("Cache-Control", "no-store")
end)

http.route("POST", BASE, function(req)
  local who, err = admin.require(req)
  if not who then return admin.fail(err) end
  local body, bad = json_body(req)
  if not body then return bad end
  local client, err = oidc.create_client(body)
  if not client then return admin.fail(err) end
  audit.append({ action = "oidc_client.create", actor = who.actor, target = client.client_id, details = { name = client.name } })
  return secret_answer(client, 201)
end)

http.route("GET", BASE .. "/{client_id}", function(req)
  local who, err = admin.require(req)
  if not who then return admin.fail(err) end
  local client, err = oidc.get_client(req.params.client_id)
  if not client then return admin.fail(err) end
  return http.json(client):header("Cache-Control", "no-store")
end)

http.route("PATCH", BASE .. "/{client_id}", function(req)
  local who, err = admin.require(req)
  if not who then return admin.fail(err) end
  local body, bad = json_body(req)
  if not body then return bad end
  local client, err = oidc.update_client(req.params.client_id, body)
  if not client then return admin.fail(err) end
  audit.append({ action = "oidc_client.update", actor = who.actor, target = client.client_id })
  return http.json(client):header("Cache-Control", "no-store")
end)

http.route("DELETE", BASE .. "/{client_id}", function(req)
  local who, err = admin.require(req)
  if not who then return admin.fail(err) end
  local done, err = oidc.delete_client(req.params.client_id)
  if not done then return admin.fail(err) end
  audit.append({ action = "oidc_client.delete", actor = who.actor, target = req.params.client_id })
  return http.status(204)
end)

http.route("POST", BASE .. "/{client_id}/rotate-secret", function(req)
  local who, err = admin.require(req)
  if not who then return admin.fail(err) end
  local secret, err = oidc.rotate_client_secret(req.params.client_id)
  if not secret then return admin.fail(err) end
  audit.append({ action = "oidc_client.rotate_secret", actor = who.actor, target = req.params.client_id })
  return secret_answer({ client_id = req.params.client_id, client_secret = secret })
end)
