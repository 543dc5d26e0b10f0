-- Admin console, users pane: GET /auth/console (to here), the user list and a new-user form,
-- one user's page, and its actions (disable, enable, delete, password reset, sign-out
-- everywhere). Shared console code is in lib/console.lua.
local http = require("assay.http")
local json = require("assay.json")
local users = require("assay.users")
local session = require("assay.session")
local audit = require("assay.audit")
local log = require("assay.log")
local errors = require("lib.errors")
local present = require("lib.present")
local console = require("lib.console")
local mails = require("lib.mails")

local guard, render, actor = console.guard, console.render, console.actor
local trim, query, user_path = console.trim, console.query, console.user_path
local message_of, absent_if_null = errors.message_of, present.absent_if_null
local PAGE_SIZE = console.PAGE_SIZE

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
    if absent_if_null(res.next_cursor) then
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
    local code = errors.code_of(err)
    if code == "conflict" then
      return users_page(req, s, { error = "That email is already registered.", form = form }, 409)
    elseif code == "invalid" or code == "weak_password" then
      return users_page(req, s, { error = message_of(err), form = form }, 422)
    elseif code == "busy" then
      return users_page(req, s, { error = message_of(err), form = form }, 503)
        :header("Retry-After", errors.retry_after(err))
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
    return console.message(req, s, "Not found", "No such user.", 404, "users")
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
    more_sessions = list ~= nil and absent_if_null(list.next_cursor) ~= nil,
    metadata_json = metadata,
    is_self = user.id == s.user.id,
    back = user_path(user.id),
  })
end)

local function send_reset(s, user)
  local ok, merr = mails.admin_reset(user)
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
