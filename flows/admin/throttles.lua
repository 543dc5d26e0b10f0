-- Admin API: the brute-force counters behind sign-in throttling.
--   GET    /auth/admin/auth/login-throttles?limit=&cursor=
--   DELETE /auth/admin/auth/login-throttles/{key}   key percent-encoded, e.g. account:a%40b.c
local http = require("assay.http")
local json = require("assay.json")
local session = require("assay.session")
local throttle = require("assay.throttle")
local audit = require("assay.audit")
local admin = require("assay.admin")

local BASE = "/auth/admin/auth/login-throttles"

local function fail(err)
  local code, msg = tostring(err):match("^([%w_]+):%s*(.*)$")
  if code == "invalid" then return admin.error(422, "invalid_field", msg) end
  return admin.fail(err)
end

local function limit_of(req)
  local raw = req.query.limit
  if raw == nil or raw == "" then return nil end
  local n = raw:match("^%d+$") and tonumber(raw)
  if not n or n < 1 or n > 200 then
    return nil, admin.error(422, "invalid_field", "limit: must be an integer from 1 to 200")
  end
  return n
end

local function nonempty(s)
  if s == nil or s == "" then return nil end
  return s
end

local function nullable(v)
  if v == nil then return json.null end
  return v
end

http.route("GET", BASE, function(req)
  local who, denied = admin.require(req)
  if not who then return denied end
  local limit, bad = limit_of(req)
  if bad then return bad end
  local res, err = throttle.list({ limit = limit, cursor = nonempty(req.query.cursor) })
  if not res then return fail(err) end
  local entries = json.array()
  for i, e in ipairs(res.entries or {}) do
    entries[i] = {
      key = e.key,
      failures = e.failures,
      locked_until = nullable(e.locked_until),
      last_failure_at = nullable(e.last_failure_at),
    }
  end
  return http.json({ entries = entries, next_cursor = nullable(res.next_cursor) })
    :header("Cache-Control", "no-store")
end)

http.route("DELETE", BASE .. "/{key}", function(req)
  local who, denied = admin.require(req)
  if not who then return denied end
  if who.kind == "session" and not session.check_csrf(req) then
    return admin.error(403, "csrf", "missing or wrong X-CSRF-Token header")
  end
  -- req.params.key is already percent-decoded ("account:a@b.c").
  local key = req.params.key
  local done, err = throttle.clear(key)
  if not done then return fail(err) end
  audit.append({ action = "throttle.clear", actor = who.actor, target = key })
  return http.status(204)
end)
