-- Admin console, sessions pane: all live sessions (or one user's), and revoking one.
-- Shared console code is in lib/console.lua.
local http = require("assay.http")
local users = require("assay.users")
local session = require("assay.session")
local audit = require("assay.audit")
local errors = require("lib.errors")
local present = require("lib.present")
local console = require("lib.console")

local guard, render, actor = console.guard, console.render, console.actor
local trim, query, with_query = console.trim, console.query, console.with_query
local message_of, absent_if_null = errors.message_of, present.absent_if_null

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

  local res, err = session.list({ user_id = user_id, limit = console.PAGE_SIZE, cursor = cursor })
  if not res then
    ctx.error = message_of(err)
  else
    ctx.sessions = res.sessions
    if absent_if_null(res.next_cursor) then
      ctx.next_url = "/auth/console/sessions?" .. query({ { "user", filter }, { "cursor", res.next_cursor } })
    end
  end
  return render(req, s, "console/sessions.html", ctx)
end)

http.route("POST", "/auth/console/sessions/{id}/revoke", function(req)
  local s, resp = guard(req)
  if not s then return resp end
  local back = console.safe_back(req.form.back) or "/auth/console/sessions"
  local done, err = session.revoke(req.params.id)
  if not done then
    if errors.code_of(err) == "not_found" then
      return http.redirect(with_query(back, "error=session-gone"), 303)
    end
    error(err)
  end
  audit.append({ action = "session.revoke", actor = actor(s), target = req.params.id })
  return http.redirect(with_query(back, "notice=session-revoked"), 303)
end)
