-- Admin API: users. JSON in, JSON out, under /auth/admin/auth/users.
-- Callers are an admin API key (Bearer) or an admin's session; admin.require also makes a
-- session send the X-CSRF-Token header on requests that change something.
local http = require("assay.http")
local json = require("assay.json")
local users = require("assay.users")
local password = require("assay.password")
local session = require("assay.session")
local audit = require("assay.audit")
local admin = require("assay.admin")
local present = require("lib.present")
local mails = require("lib.mails")

local BASE = "/auth/admin/auth/users"


local ok, nonempty, nullable = present.ok, present.nonempty, present.nullable
local present_user, present_session = present.user, present.session

-- Decoded JSON arrays carry json.array's metatable; objects carry none.
local function is_array(v)
  return type(v) == "table" and getmetatable(v) == getmetatable(json.array())
end

local function is_object(v)
  return type(v) == "table" and getmetatable(v) == nil
end

local function body_object(req)
  local body = req:json()
  if body == nil then
    return nil, admin.error(400, "invalid_request", "the body is not valid JSON")
  end
  if not is_object(body) then
    return nil, admin.error(400, "invalid_request", "the body must be a JSON object")
  end
  return body
end

local KINDS = {
  string = { test = function(v) return type(v) == "string" end, text = "a string" },
  boolean = { test = function(v) return type(v) == "boolean" end, text = "true or false" },
  object = { test = is_object, text = "a JSON object" },
  strings = {
    test = function(v)
      if not is_array(v) then return false end
      for _, x in ipairs(v) do
        if type(x) ~= "string" then return false end
      end
      return true
    end,
    text = "an array of strings",
  },
}

local CREATE = {
  email = "string", password = "string", display_name = "string",
  email_verified = "boolean", roles = "strings", metadata = "object",
}
local PATCH = {
  email = "string", password = "string", display_name = "string",
  email_verified = "boolean", roles = "strings", metadata = "object", disabled = "boolean",
}

-- The fields of `body` checked against `spec`; null counts as absent. Names are checked in
-- sorted order so the error for a body with several bad fields is always the same one.
local function fields_of(body, spec)
  local names = {}
  for k in pairs(body) do names[#names + 1] = k end
  table.sort(names)
  local out = {}
  for _, k in ipairs(names) do
    local kind = KINDS[spec[k] or ""]
    if not kind then
      return nil, admin.error(422, "invalid_field", k .. ": unknown field")
    end
    local v = body[k]
    if v ~= json.null then
      if not kind.test(v) then
        return nil, admin.error(422, "invalid_field", k .. ": must be " .. kind.text)
      end
      out[k] = v
    end
  end
  return out
end

-- GET users?q=&limit=&cursor=
http.route("GET", BASE, function(req)
  local who, err = admin.require(req)
  if not who then return admin.fail(err) end
  local page, bad = admin.paging(req)
  if not page then return bad end
  local res, err = users.list({ q = nonempty(req.query.q), limit = page.limit, cursor = page.cursor })
  if not res then return admin.fail(err) end
  local list = json.array()
  for i, u in ipairs(res.users or {}) do list[i] = present_user(u) end
  return ok({ users = list, next_cursor = nullable(res.next_cursor) })
end)

-- POST users {email, password?, display_name?, email_verified?, roles?, metadata?}
http.route("POST", BASE, function(req)
  local who, err = admin.require(req)
  if not who then return admin.fail(err) end
  local body, bad = body_object(req)
  if not body then return bad end
  local f
  f, bad = fields_of(body, CREATE)
  if not f then return bad end
  if f.email == nil then
    return admin.error(422, "invalid_field", "email: required")
  end
  local user, err = users.create(f)
  if not user then return admin.fail(err) end
  audit.append({ action = "user.create", actor = who.actor, target = user.id, details = { email = user.email } })
  return ok(present_user(user), 201)
end)

-- GET users/{id}: the user and their sessions
http.route("GET", BASE .. "/{id}", function(req)
  local who, err = admin.require(req)
  if not who then return admin.fail(err) end
  local user, err = users.get(req.params.id)
  if not user then return admin.fail(err) end
  local res, serr = session.list({ user_id = user.id })
  if not res then return admin.fail(serr) end
  local out = present_user(user)
  out.sessions = json.array()
  for i, s in ipairs(res.sessions or {}) do out.sessions[i] = present_session(s) end
  return ok(out)
end)

-- PATCH users/{id}: any of email, display_name, email_verified, roles, metadata, disabled,
-- password. Everything is checked before anything is changed.
http.route("PATCH", BASE .. "/{id}", function(req)
  local who, err = admin.require(req)
  if not who then return admin.fail(err) end
  local body, bad = body_object(req)
  if not body then return bad end
  -- null clears the display name; fields_of would drop it as "absent".
  local clear_name = body.display_name == json.null
  local f
  f, bad = fields_of(body, PATCH)
  if not f then return bad end
  if clear_name then f.display_name = "" end

  local id = req.params.id
  local existing, gerr = users.get(id)
  if not existing then return admin.fail(gerr) end
  if f.password ~= nil then
    local good, perr = password.check_policy(f.password)
    if not good then return admin.fail(perr) end
  end

  local changes, changed = {}, {}
  for _, k in ipairs({ "email", "display_name", "email_verified", "roles", "metadata" }) do
    if f[k] ~= nil then
      changes[k] = f[k]
      changed[#changed + 1] = k
    end
  end
  if #changed > 0 then
    local user, err = users.update(id, changes)
    if not user then return admin.fail(err) end
    audit.append({ action = "user.update", actor = who.actor, target = id, details = { fields = changed } })
  end
  if f.password ~= nil then
    local done, err = users.set_password(id, f.password)
    if not done then return admin.fail(err) end
    audit.append({ action = "user.password_set", actor = who.actor, target = id })
  end
  if f.disabled ~= nil and f.disabled ~= (existing.disabled == true) then
    -- users.disable also revokes the user's sessions.
    local user, err
    if f.disabled then user, err = users.disable(id) else user, err = users.enable(id) end
    if not user then return admin.fail(err) end
    audit.append({ action = f.disabled and "user.disable" or "user.enable", actor = who.actor, target = id })
  end

  local user, err = users.get(id)
  if not user then return admin.fail(err) end
  return ok(present_user(user))
end)

http.route("DELETE", BASE .. "/{id}", function(req)
  local who, err = admin.require(req)
  if not who then return admin.fail(err) end
  local done, err = users.delete(req.params.id)
  if not done then return admin.fail(err) end
  audit.append({ action = "user.delete", actor = who.actor, target = req.params.id })
  return http.status(204)
end)

-- POST users/{id}/password-reset: mail the user a recovery link.
http.route("POST", BASE .. "/{id}/password-reset", function(req)
  local who, err = admin.require(req)
  if not who then return admin.fail(err) end
  local user, err = users.get(req.params.id)
  if not user then return admin.fail(err) end
  local sent, merr = mails.admin_reset(user)
  if not sent then return admin.fail(merr) end
  audit.append({ action = "recovery.sent", actor = who.actor, target = user.id })
  return ok({ sent = true }, 202)
end)

-- DELETE users/{id}/sessions: sign the user out everywhere.
http.route("DELETE", BASE .. "/{id}/sessions", function(req)
  local who, err = admin.require(req)
  if not who then return admin.fail(err) end
  local user, err = users.get(req.params.id)
  if not user then return admin.fail(err) end
  local n = session.revoke_all(user.id)
  audit.append({ action = "session.revoke_all", actor = who.actor, target = user.id, details = { count = n } })
  return ok({ revoked = n })
end)
