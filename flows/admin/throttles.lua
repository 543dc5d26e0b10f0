-- Admin API: the brute-force counters behind sign-in throttling.
--   GET    /auth/admin/auth/login-throttles?limit=&cursor=
--   DELETE /auth/admin/auth/login-throttles/{key}   key percent-encoded, e.g. account:a%40b.c
local http = require("assay.http")
local throttle = require("assay.throttle")
local audit = require("assay.audit")
local admin = require("assay.admin")
local present = require("lib.present")

local BASE = "/auth/admin/auth/login-throttles"

local nullable = present.nullable

http.route("GET", BASE, function(req)
  local who, err = admin.require(req)
  if not who then return admin.fail(err) end
  local page, bad = admin.paging(req)
  if not page then return bad end
  local res, err = throttle.list(page)
  if not res then return admin.fail(err) end
  return present.ok({ entries = present.list(res.entries, present.throttle), next_cursor = nullable(res.next_cursor) })
end)

http.route("DELETE", BASE .. "/{key}", function(req)
  local who, err = admin.require(req)
  if not who then return admin.fail(err) end
  -- req.params.key is already percent-decoded ("account:a@b.c").
  local key = req.params.key
  local done, err = throttle.clear(key)
  if not done then return admin.fail(err) end
  audit.append({ action = "throttle.clear", actor = who.actor, target = key })
  return http.status(204)
end)
