-- Admin API: sessions, under /auth/admin/auth/sessions.
--   GET    sessions?user_id=&limit=&cursor=
--   DELETE sessions/{id}         revoke one session
--   DELETE sessions?user_id=X    revoke all of a user's sessions
-- A session principal must send X-CSRF-Token on DELETE (admin.require checks it).
local http = require("assay.http")
local session = require("assay.session")
local audit = require("assay.audit")
local admin = require("assay.admin")
local present = require("lib.present")

local BASE = "/auth/admin/auth/sessions"

local ok, nonempty, nullable = present.ok, present.nonempty, present.nullable

http.route("GET", BASE, function(req)
  local who, err = admin.require(req)
  if not who then return admin.fail(err) end
  local page, bad = admin.paging(req)
  if not page then return bad end
  local res, err = session.list({
    user_id = nonempty(req.query.user_id),
    limit = page.limit,
    cursor = page.cursor,
  })
  if not res then return admin.fail(err) end
  return ok({ sessions = present.list(res.sessions, present.session), next_cursor = nullable(res.next_cursor) })
end)

http.route("DELETE", BASE .. "/{id}", function(req)
  local who, err = admin.require(req)
  if not who then return admin.fail(err) end
  local done, err = session.revoke(req.params.id)
  if not done then return admin.fail(err) end
  audit.append({ action = "session.revoke", actor = who.actor, target = req.params.id })
  return http.status(204)
end)

http.route("DELETE", BASE, function(req)
  local who, err = admin.require(req)
  if not who then return admin.fail(err) end
  local user_id = nonempty(req.query.user_id)
  if not user_id then
    -- Never "revoke everything": the query parameter is required.
    return admin.error(400, "invalid_request", "user_id is required")
  end
  local n = session.revoke_all(user_id)
  audit.append({ action = "session.revoke_all", actor = who.actor, target = user_id, details = { count = n } })
  return ok({ revoked = n })
end)
