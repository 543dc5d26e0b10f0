-- Admin API: the audit log, GET /auth/admin/auth/audit
--   ?actor=&action=&since=&until=&limit=&cursor=   (since/until are RFC 3339 times)
local http = require("assay.http")
local audit = require("assay.audit")
local admin = require("assay.admin")
local present = require("lib.present")

local nonempty, nullable = present.nonempty, present.nullable

http.route("GET", "/auth/admin/auth/audit", function(req)
  local who, err = admin.require(req)
  if not who then return admin.fail(err) end
  local page, bad = admin.paging(req)
  if not page then return bad end
  local since, till = nonempty(req.query.since), nonempty(req.query["until"])
  for _, p in ipairs({ { "since", since }, { "until", till } }) do
    if p[2] and not present.is_rfc3339(p[2]) then
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
  return present.ok({ entries = present.list(res.entries, present.audit_entry), next_cursor = nullable(res.next_cursor) })
end)
