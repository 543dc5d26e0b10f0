-- JSON answers for the admin API: values spelled out so that absent ones are null and lists
-- are [] (a Lua table cannot tell an empty array from an empty object, nor keep a nil).
--   local present = require("lib.present")
--   return present.ok({ users = present.list(res.users, present.user), next_cursor = present.nullable(res.next_cursor) })
local http = require("assay.http")
local json = require("assay.json")

local present = {}

-- nil for an absent or empty query or form value.
function present.nonempty(s)
  if s == nil or s == "" then return nil end
  return s
end

-- json.null for nil, so the key is written as null instead of left out.
function present.nullable(v)
  if v == nil then return json.null end
  return v
end

-- nil for json.null (a null that came from JSON, e.g. in metadata), which is truthy in Lua.
function present.absent_if_null(v)
  if v == json.null then return nil end
  return v
end

-- A JSON array of the sequence `t` (an empty one is [] rather than {}).
function present.array(t)
  local a = json.array()
  for i, v in ipairs(t or {}) do a[i] = v end
  return a
end

-- A JSON array of `f(item)` for each item of the sequence `t`.
function present.list(t, f)
  local a = json.array()
  for i, v in ipairs(t or {}) do a[i] = f(v) end
  return a
end

-- A JSON answer that no cache keeps.
function present.ok(value, status)
  return http.json(value, status or 200):header("Cache-Control", "no-store")
end

function present.user(u)
  local metadata = u.metadata
  if type(metadata) ~= "table" then metadata = {} end
  return {
    id = u.id,
    email = u.email,
    email_verified = u.email_verified == true,
    display_name = present.nullable(u.display_name),
    disabled = u.disabled == true,
    roles = present.array(u.roles),
    metadata = metadata,
    has_password = u.has_password == true,
    created_at = present.nullable(u.created_at),
    updated_at = present.nullable(u.updated_at),
  }
end

function present.session(s)
  return {
    id = s.id,
    user_id = present.nullable(s.user_id),
    email = present.nullable(s.email),
    created_at = present.nullable(s.created_at),
    last_seen_at = present.nullable(s.last_seen_at),
    expires_at = present.nullable(s.expires_at),
    idle_expires_at = present.nullable(s.idle_expires_at),
    ip = present.nullable(s.ip),
    user_agent = present.nullable(s.user_agent),
    amr = present.array(s.amr),
  }
end

function present.audit_entry(e)
  return {
    id = e.id,
    at = e.at,
    actor = present.nullable(e.actor),
    action = e.action,
    target = present.nullable(e.target),
    ip = present.nullable(e.ip),
    request_id = present.nullable(e.request_id),
    details = present.nullable(e.details),
  }
end

function present.throttle(e)
  return {
    key = e.key,
    failures = e.failures,
    locked_until = present.nullable(e.locked_until),
    last_failure_at = present.nullable(e.last_failure_at),
  }
end

-- 2026-11-23T09:00:00Z, with optional fraction and a Z or +hh:mm offset (audit filters).
function present.is_rfc3339(s)
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

return present
