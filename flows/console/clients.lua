-- Admin console, OIDC clients pane: the registered clients, creating one, rotating its secret
-- and deleting it. Shared console code is in lib/console.lua.
local http = require("assay.http")
local json = require("assay.json")
local oidc = require("assay.oidc")
local audit = require("assay.audit")
local errors = require("lib.errors")
local console = require("lib.console")

local guard, render, actor = console.guard, console.render, console.actor
local trim = console.trim
local message_of = errors.message_of

-- One value per line (textarea input), blank lines dropped.
local function lines_of(text)
  local out = {}
  for line in (text or ""):gmatch("[^\r\n]+") do
    line = trim(line)
    if line ~= "" then out[#out + 1] = line end
  end
  return out
end

local function words_of(text)
  local out = {}
  for w in (text or ""):gmatch("%S+") do out[#out + 1] = w end
  return out
end

local function clients_page(req, s, ctx, status)
  local page = oidc.list_clients({ limit = 200 })
  ctx.section = "clients"
  ctx.clients = page and page.clients or {}
  ctx.methods = { "client_secret_basic", "client_secret_post", "none", "private_key_jwt" }
  ctx.form = ctx.form or { pkce_required = true, default_scopes = "openid profile email", token_endpoint_auth_method = "client_secret_basic" }
  return render(req, s, "console/clients.html", ctx, status)
end

-- The secret, once: a page of its own, never a redirect (it must not sit in a URL or history).
local function secret_page(req, s, client_id, name, secret)
  return render(req, s, "console/client_secret.html", { section = "clients", client_id = client_id, name = name, secret = secret })
end

http.route("GET", "/auth/console/clients", function(req)
  local s, resp = guard(req)
  if not s then return resp end
  return clients_page(req, s, {})
end)

http.route("POST", "/auth/console/clients", function(req)
  local s, resp = guard(req)
  if not s then return resp end
  local f = req.form
  local form = {
    name = trim(f.name), redirect_uris = f.redirect_uris or "", post_logout_redirect_uris = f.post_logout_redirect_uris or "",
    default_scopes = f.default_scopes or "", token_endpoint_auth_method = f.token_endpoint_auth_method or "client_secret_basic",
    pkce_required = f.pkce_required == "1", skip_consent = f.skip_consent == "1", backchannel_logout_uri = trim(f.backchannel_logout_uri),
    resource_server = f.resource_server == "1",
  }
  local input = {
    name = form.name,
    redirect_uris = json.array(lines_of(form.redirect_uris)),
    post_logout_redirect_uris = json.array(lines_of(form.post_logout_redirect_uris)),
    token_endpoint_auth_method = form.token_endpoint_auth_method,
    pkce_required = form.pkce_required,
    skip_consent = form.skip_consent,
    resource_server = form.resource_server,
  }
  local scopes = words_of(form.default_scopes)
  if #scopes > 0 then input.default_scopes = scopes end
  if form.backchannel_logout_uri ~= "" then input.backchannel_logout_uri = form.backchannel_logout_uri end
  local client, err = oidc.create_client(input)
  if not client then
    if errors.code_of(err) == "invalid" then
      return clients_page(req, s, { error = message_of(err), form = form }, 422)
    end
    error(err)
  end
  audit.append({ action = "oidc_client.create", actor = actor(s), target = client.client_id, details = { name = client.name } })
  if client.client_secret then
    return secret_page(req, s, client.client_id, client.name, client.client_secret)
  end
  return http.redirect("/auth/console/clients?notice=client-created", 303)
end)

http.route("POST", "/auth/console/clients/{id}/rotate-secret", function(req)
  local s, resp = guard(req)
  if not s then return resp end
  local client = oidc.get_client(req.params.id)
  if not client then return http.redirect("/auth/console/clients?error=client-gone", 303) end
  local secret, err = oidc.rotate_client_secret(client.client_id)
  if not secret then return clients_page(req, s, { error = message_of(err) }, 422) end
  audit.append({ action = "oidc_client.rotate_secret", actor = actor(s), target = client.client_id })
  return secret_page(req, s, client.client_id, client.name, secret)
end)

http.route("POST", "/auth/console/clients/{id}/delete", function(req)
  local s, resp = guard(req)
  if not s then return resp end
  local done = oidc.delete_client(req.params.id)
  if not done then return http.redirect("/auth/console/clients?error=client-gone", 303) end
  audit.append({ action = "oidc_client.delete", actor = actor(s), target = req.params.id })
  return http.redirect("/auth/console/clients?notice=client-deleted", 303)
end)
