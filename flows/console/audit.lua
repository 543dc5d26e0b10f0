-- Admin console, audit pane: the audit log with filters by actor, action and time.
-- Shared console code is in lib/console.lua.
local http = require("assay.http")
local json = require("assay.json")
local audit = require("assay.audit")
local errors = require("lib.errors")
local present = require("lib.present")
local console = require("lib.console")

local guard, render, actor = console.guard, console.render, console.actor
local trim, query, user_path = console.trim, console.query, console.user_path
local message_of, absent_if_null = errors.message_of, present.absent_if_null

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
    if f[name] ~= "" and not present.is_rfc3339(f[name]) then
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
    limit = console.PAGE_SIZE,
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
  if absent_if_null(res.next_cursor) then
    ctx.next_url = "/auth/console/audit?" .. query({
      { "actor", f.actor }, { "action", f.action }, { "since", f.since }, { "until", f["until"] },
      { "cursor", res.next_cursor },
    })
  end
  return render(req, s, "console/audit.html", ctx)
end)
