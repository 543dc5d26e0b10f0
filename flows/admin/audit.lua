-- Admin API: the audit log, GET /auth/admin/auth/audit
--   ?actor=&action=&since=&until=&limit=&cursor=   (since/until are RFC 3339 times)
local http = require("assay.http")
local json = require("assay.json")
local audit = require("assay.audit")
local admin = require("assay.admin")

local function nonempty(s)
  if s == nil or s == "" then return nil end
  return s
end

local function nullable(v)
  if v == nil then return json.null end
  return v
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

http.route("GET", "/auth/admin/auth/audit", function(req)
  local who, denied = admin.require(req)
  if not who then return denied end
  local page, bad = admin.paging(req)
  if not page then return bad end
  local since, till = nonempty(req.query.since), nonempty(req.query["until"])
  for _, p in ipairs({ { "since", since }, { "until", till } }) do
    if p[2] and not is_rfc3339(p[2]) then
      return admin.error(422, "invalid_field", p[1] .. ": must be an RFC 3339 time such as 2026-11-23T09:00:00Z")
    end
  end
  local res, err = audit.query({
    actor = nonempty(req.query.actor),
    action = nonempty(req.query.action),
    since = since,
    ["until"] = till,
    limit = page.limit,
    cursor = page.cursor,
  })
  if not res then return admin.fail(err) end
  local entries = json.array()
  for i, e in ipairs(res.entries or {}) do
    entries[i] = {
      id = e.id,
      at = e.at,
      actor = nullable(e.actor),
      action = e.action,
      target = nullable(e.target),
      ip = nullable(e.ip),
      request_id = nullable(e.request_id),
      details = nullable(e.details),
    }
  end
  return http.json({ entries = entries, next_cursor = nullable(res.next_cursor) })
    :header("Cache-Control", "no-store")
end)
