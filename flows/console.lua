-- The admin console: server-rendered pages over users, sessions and the audit log, plain HTML
-- forms that work without JavaScript. Every route needs a session whose user has the "admin"
-- role; every POST needs the session's CSRF token and answers with a 303 back to a page
-- (post/redirect/get), which shows a fixed message picked by a code in the query string.
local http = require("assay.http")
local jwks = require("assay.jwks")
local oidc = require("assay.oidc")
local template = require("assay.template")
local json = require("assay.json")
local users = require("assay.users")
local session = require("assay.session")
local audit = require("assay.audit")
local mail = require("assay.mail")
local log = require("assay.log")
local settings = require("assay.settings")
local form_fields = require("assay.form")

local PAGE_SIZE = 50
local EXPIRED = "Your form expired, please try again."

-- ?notice=... and ?error=... codes; the page never prints query text as a message.
local NOTICES = {
  ["client-created"] = "The client was created. It has no secret: it authenticates with PKCE or its own keys.",
  ["client-deleted"] = "The client was deleted.",
  ["key-rotated"] = "A new signing key is active; the previous one stays published.",
  ["user-created"] = "The user was created.",
  ["user-disabled"] = "The user was disabled and signed out everywhere.",
  ["user-enabled"] = "The user was enabled.",
  ["user-deleted"] = "The user was deleted.",
  ["reset-sent"] = "A password reset link was sent.",
  ["sessions-revoked"] = "All of the user's sessions were revoked.",
  ["session-revoked"] = "The session was revoked.",
}
local ERRORS = {
  ["client-gone"] = "That client does not exist any more.",
  ["bad-alg"] = "Choose RS256, ES256 or EdDSA.",
  ["not-found"] = "That user does not exist any more.",
  ["session-gone"] = "That session had already ended.",
  ["self"] = "You cannot disable or delete your own account.",
  ["mail"] = "The email could not be sent. The server log has the details.",
}

local trim = form_fields.trim

local urlencode = form_fields.urlencode

-- "a=1&b=2" from an ordered list of { name, value }; empty values are left out.
local function query(pairs_list)
  local parts = {}
  for _, p in ipairs(pairs_list) do
    if p[2] ~= nil and p[2] ~= "" then
      parts[#parts + 1] = urlencode(p[1]) .. "=" .. urlencode(p[2])
    end
  end
  return table.concat(parts, "&")
end

local function with_query(path, q)
  if q == "" then return path end
  return path .. (path:find("?", 1, true) and "&" or "?") .. q
end

-- json.null (a null that came from JSON, e.g. in metadata) is truthy in Lua.
local function present(v)
  if v == json.null then return nil end
  return v
end

local function has_role(user, role)
  for _, r in ipairs(user.roles or {}) do
    if r == role then return true end
  end
  return false
end

local function message_of(err)
  local msg = tostring(err):gsub("^[%w_]+:%s*", "")
  return (msg:gsub("^%l", string.upper))
end

-- 2026-11-23T09:00:00Z, with optional fraction and a Z or +hh:mm offset.
local function is_rfc3339(s)
  local y, mo, d, h, mi, sec, rest =
    s:match("^(%d%d%d%d)%-(%d%d)%-(%d%d)[Tt](%d%d):(%d%d):(%d%d)(.*)$")
  if not y then return false end
  mo, d, h, mi, sec = tonumber(mo), tonumber(d), tonumber(h), tonumber(mi), tonumber(sec)
  if mo < 1 or mo > 12 or d < 1 or d > 31 or h > 23 or mi > 59 or sec > 60 then return false end
  rest = rest:gsub("^%.%d+", "", 1)
  if rest == "Z" or rest == "z" then return true end
  local oh, om = rest:match("^[+-](%d%d):(%d%d)$")
  return oh ~= nil and tonumber(oh) <= 23 and tonumber(om) <= 59
end

local function respond(name, ctx, status)
  ctx.product_name = settings.product_name
  return http.html(assert(template.render(name, ctx)), status or 200)
    :header("Cache-Control", "no-store")
    :header("X-Frame-Options", "DENY")
    :header("Content-Security-Policy", "frame-ancestors 'none'")
    :header("Referrer-Policy", "same-origin")
end

-- A console page: the layout needs the admin's email and CSRF token for its sign-out form.
local function render(req, s, name, ctx, status)
  ctx.me = { id = s.user.id, email = s.user.email }
  ctx.csrf_token = s.csrf_token
  ctx.notice = ctx.notice or NOTICES[req.query.notice or ""]
  ctx.error = ctx.error or ERRORS[req.query.error or ""]
  return respond(name, ctx, status)
end

local function console_message(req, s, title, text, status, section)
  return render(req, s, "console/message.html", { title = title, message = text, section = section }, status)
end

-- The signed-in admin's session, or the response to send instead.
local function guard(req)
  local s = session.load(req)
  if not s then
    -- Come back here after signing in; a POST's path is no page, so go to the console then.
    local back = "/auth/console"
    if req.method == "GET" then
      local names = {}
      for k in pairs(req.query) do names[#names + 1] = k end
      table.sort(names)
      local list = {}
      for _, k in ipairs(names) do list[#list + 1] = { k, req.query[k] } end
      back = with_query(req.path, query(list))
    end
    return nil, http.redirect("/auth/login?return_to=" .. urlencode(back), 303)
  end
  if not has_role(s.user, "admin") then
    return nil, respond("message.html", {
      title = "Forbidden",
      message = "You need the admin role.",
      kind = "error",
      detail = "You are signed in as " .. (s.user.email or "") .. ".",
      signout = true,
      csrf_token = s.csrf_token,
      links = { { href = "/auth/welcome", label = "Back" } },
    }, 403)
  end
  if req.method ~= "GET" and not session.check_csrf(req) then
    return nil, console_message(req, s, "Form expired", EXPIRED, 403)
  end
  return s
end

local function actor(s)
  return "user:" .. s.user.id
end

local function user_path(id)
  return "/auth/console/users/" .. urlencode(id)
end

-- Where a revoke button may send the browser back to: a console path, nothing else.
local function safe_back(v)
  if type(v) ~= "string" or #v > 2048 then return nil end
  if v:find("[^!-~]") or v:find("\\", 1, true) or v:find("#", 1, true) or v:find("..", 1, true) then
    return nil
  end
  if v == "/auth/console" or v:sub(1, 14) == "/auth/console/" or v:sub(1, 14) == "/auth/console?" then
    return v
  end
  return nil
end

---------------------------------------------------------------------------------------------
-- Users

local function users_page(req, s, ctx, status)
  local q = trim(req.query.q)
  local cursor = req.query.cursor
  if cursor == "" then cursor = nil end
  local res, err = users.list({ q = q ~= "" and q or nil, limit = PAGE_SIZE, cursor = cursor })
  ctx.section = "users"
  ctx.q = q
  ctx.form = ctx.form or {}
  if res then
    ctx.users = res.users
    if present(res.next_cursor) then
      ctx.next_url = "/auth/console/users?" .. query({ { "q", q }, { "cursor", res.next_cursor } })
    end
  else
    ctx.users = {}
    ctx.error = ctx.error or message_of(err)
  end
  return render(req, s, "console/users.html", ctx, status)
end

http.route("GET", "/auth/console", function(req)
  local s, resp = guard(req)
  if not s then return resp end
  return http.redirect("/auth/console/users", 303)
end)

http.route("GET", "/auth/console/users", function(req)
  local s, resp = guard(req)
  if not s then return resp end
  return users_page(req, s, {})
end)

http.route("POST", "/auth/console/users", function(req)
  local s, resp = guard(req)
  if not s then return resp end
  local f = req.form
  local email = trim(f.email)
  local display_name = trim(f.display_name)
  local pw = f.password or ""
  local is_admin = f.admin == "1"
  -- Sent back into the form on failure (never the password).
  local form = { email = email, display_name = display_name, admin = is_admin }
  if email == "" then
    return users_page(req, s, { error = "Enter an email address.", form = form }, 422)
  end
  local user, err = users.create({
    email = email,
    display_name = display_name ~= "" and display_name or nil,
    password = pw ~= "" and pw or nil,
    roles = is_admin and { "admin" } or nil,
  })
  if not user then
    local code = tostring(err):match("^([%w_]+):")
    if code == "conflict" then
      return users_page(req, s, { error = "That email is already registered.", form = form }, 409)
    elseif code == "invalid" or code == "weak_password" then
      return users_page(req, s, { error = message_of(err), form = form }, 422)
    elseif code == "busy" then
      return users_page(req, s, { error = message_of(err), form = form }, 503)
        :header("Retry-After", tostring(err):match("(%d+) seconds") or "1")
    end
    error(err)
  end
  audit.append({ action = "user.create", actor = actor(s), target = user.id, details = { email = user.email } })
  return http.redirect(user_path(user.id) .. "?notice=user-created", 303)
end)

http.route("GET", "/auth/console/users/{id}", function(req)
  local s, resp = guard(req)
  if not s then return resp end
  local user = users.get(req.params.id)
  if not user then
    return console_message(req, s, "Not found", "No such user.", 404, "users")
  end
  local list = session.list({ user_id = user.id })
  local metadata = ""
  if type(user.metadata) == "table" and next(user.metadata) ~= nil then
    metadata = json.encode(user.metadata, { pretty = true }) or ""
  end
  return render(req, s, "console/user.html", {
    section = "users",
    user = user,
    sessions = list and list.sessions or {},
    more_sessions = list ~= nil and present(list.next_cursor) ~= nil,
    metadata_json = metadata,
    is_self = user.id == s.user.id,
    back = user_path(user.id),
  })
end)

local function send_reset(s, user)
  local token, err = users.issue_token(user.id, "recovery")
  if not token then error(err) end
  local product = settings.product_name or "assay"
  local link = (settings.public_url or ""):gsub("/+$", "") .. "/auth/recovery/reset?token=" .. urlencode(token)
  local ok, merr = mail.send({
    to = user.email,
    subject = "Reset your " .. product .. " password",
    text = "An administrator sent you a link to set a new password for your " .. product .. " account.\n\n"
      .. "Open it within an hour:\n\n" .. link .. "\n\n"
      .. "If you did not expect this, you can ignore this message.\n",
  })
  if not ok then
    log.warn("password reset mail not sent", { user = user.id, error = merr })
    return user_path(user.id) .. "?error=mail"
  end
  audit.append({ action = "recovery.sent", actor = actor(s), target = user.id })
  return user_path(user.id) .. "?notice=reset-sent"
end

-- POST /auth/console/users/{id}/<action>: each returns where to send the browser next.
-- An ordered list, not a table keyed by name: routes must register in the same order.
local USER_ACTIONS = {
  { "disable", function(s, user)
    if user.id == s.user.id then return user_path(user.id) .. "?error=self" end
    local done, err = users.disable(user.id) -- also revokes the user's sessions
    if not done then error(err) end
    audit.append({ action = "user.disable", actor = actor(s), target = user.id })
    return user_path(user.id) .. "?notice=user-disabled"
  end },
  { "enable", function(s, user)
    local done, err = users.enable(user.id)
    if not done then error(err) end
    audit.append({ action = "user.enable", actor = actor(s), target = user.id })
    return user_path(user.id) .. "?notice=user-enabled"
  end },
  { "delete", function(s, user)
    if user.id == s.user.id then return user_path(user.id) .. "?error=self" end
    local done, err = users.delete(user.id)
    if not done then error(err) end
    audit.append({ action = "user.delete", actor = actor(s), target = user.id, details = { email = user.email } })
    return "/auth/console/users?notice=user-deleted"
  end },
  { "password-reset", send_reset },
  { "revoke-sessions", function(s, user)
    local n = session.revoke_all(user.id)
    audit.append({ action = "session.revoke_all", actor = actor(s), target = user.id, details = { count = n } })
    return user_path(user.id) .. "?notice=sessions-revoked"
  end },
}

for _, a in ipairs(USER_ACTIONS) do
  local act = a[2]
  http.route("POST", "/auth/console/users/{id}/" .. a[1], function(req)
    local s, resp = guard(req)
    if not s then return resp end
    local user = users.get(req.params.id)
    if not user then return http.redirect("/auth/console/users?error=not-found", 303) end
    return http.redirect(act(s, user), 303)
  end)
end

---------------------------------------------------------------------------------------------
-- Sessions

http.route("GET", "/auth/console/sessions", function(req)
  local s, resp = guard(req)
  if not s then return resp end
  local filter = trim(req.query.user)
  local cursor = req.query.cursor
  if cursor == "" then cursor = nil end
  local ctx = { section = "sessions", filter = filter, sessions = {} }
  ctx.back = with_query("/auth/console/sessions", query({ { "user", filter } }))

  local user_id
  if filter ~= "" then
    -- An email address or a user id.
    local u
    if filter:find("@", 1, true) then u = users.find_by_email(filter) else u = users.get(filter) end
    if not u then
      ctx.error = "No user matches " .. filter .. "."
      return render(req, s, "console/sessions.html", ctx)
    end
    user_id = u.id
    ctx.filter_user = u
  end

  local res, err = session.list({ user_id = user_id, limit = PAGE_SIZE, cursor = cursor })
  if not res then
    ctx.error = message_of(err)
  else
    ctx.sessions = res.sessions
    if present(res.next_cursor) then
      ctx.next_url = "/auth/console/sessions?" .. query({ { "user", filter }, { "cursor", res.next_cursor } })
    end
  end
  return render(req, s, "console/sessions.html", ctx)
end)

http.route("POST", "/auth/console/sessions/{id}/revoke", function(req)
  local s, resp = guard(req)
  if not s then return resp end
  local back = safe_back(req.form.back) or "/auth/console/sessions"
  local done, err = session.revoke(req.params.id)
  if not done then
    if tostring(err):match("^not_found:") then
      return http.redirect(with_query(back, "error=session-gone"), 303)
    end
    error(err)
  end
  audit.append({ action = "session.revoke", actor = actor(s), target = req.params.id })
  return http.redirect(with_query(back, "notice=session-revoked"), 303)
end)

---------------------------------------------------------------------------------------------
-- Audit log

http.route("GET", "/auth/console/audit", function(req)
  local s, resp = guard(req)
  if not s then return resp end
  local f = {
    actor = trim(req.query.actor),
    action = trim(req.query.action),
    since = trim(req.query.since),
    ["until"] = trim(req.query["until"]),
  }
  local ctx = { section = "audit", filters = f, entries = {} }
  for _, name in ipairs({ "since", "until" }) do
    if f[name] ~= "" and not is_rfc3339(f[name]) then
      ctx.error = "“" .. name .. "” must be a time like 2026-11-23T09:00:00Z."
      return render(req, s, "console/audit.html", ctx, 422)
    end
  end

  local function opt(v) if v == "" then return nil end return v end
  local cursor = opt(req.query.cursor or "")
  local res, err = audit.query({
    actor = opt(f.actor),
    action = opt(f.action),
    since = opt(f.since),
    ["until"] = opt(f["until"]),
    limit = PAGE_SIZE,
    cursor = cursor,
  })
  if not res then
    ctx.error = message_of(err)
    return render(req, s, "console/audit.html", ctx, 422)
  end

  -- Rows for the table: details as JSON text, actors that are users linked to their page.
  local rows = {}
  for i, e in ipairs(res.entries or {}) do
    local details
    if type(e.details) == "table" and next(e.details) ~= nil then
      details = json.encode(e.details)
    end
    local actor_user = type(e.actor) == "string" and e.actor:match("^user:(.+)$") or nil
    -- Targets that are ids (users, mostly) link to the user's page, which says 404 otherwise.
    local target_id = type(e.target) == "string" and e.target:match("^%x+%-%x+%-%x+%-%x+%-%x+$") or nil
    rows[i] = {
      at = e.at,
      actor = e.actor,
      actor_href = actor_user and user_path(actor_user) or nil,
      action = e.action,
      target = e.target,
      target_href = target_id and user_path(target_id) or nil,
      ip = e.ip,
      request_id = e.request_id,
      details = details,
    }
  end
  ctx.entries = rows
  if present(res.next_cursor) then
    ctx.next_url = "/auth/console/audit?" .. query({
      { "actor", f.actor }, { "action", f.action }, { "since", f.since }, { "until", f["until"] },
      { "cursor", res.next_cursor },
    })
  end
  return render(req, s, "console/audit.html", ctx)
end)

---------------------------------------------------------------------------------------------
-- Signing keys (JWKS)

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
    if tostring(err):match("^invalid:") then return http.redirect("/auth/console/keys?error=bad-alg", 303) end
    error(err)
  end
  audit.append({ action = "jwks.rotate", actor = actor(s), target = kid, details = { alg = alg } })
  return http.redirect("/auth/console/keys?notice=key-rotated", 303)
end)

---------------------------------------------------------------------------------------------
-- OIDC clients

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
    if tostring(err):match("^invalid:") then
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
