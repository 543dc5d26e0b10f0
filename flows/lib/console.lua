-- What the admin console's panes (flows/console/*.lua) share: the guard every route starts
-- with, the page renderer, the notices a redirect may name, and small URL helpers.
-- Every route needs a session whose user has the "admin" role; every POST needs the session's
-- CSRF token and answers with a 303 back to a page (post/redirect/get), which shows a fixed
-- message picked by a code in the query string.
local http = require("assay.http")
local session = require("assay.session")
local form_fields = require("assay.form")
local page = require("lib.page")
local roles = require("lib.roles")

local console = {}

console.PAGE_SIZE = 50
console.EXPIRED = "Your form expired, please try again."

-- ?notice=... and ?error=... codes; the page never prints query text as a message.
local NOTICES = {
  ["client-created"] = "The client was created. It has no secret: it authenticates with PKCE or its own keys.",
  ["client-deleted"] = "The client was deleted.",
  ["key-rotated"] = "A new signing key is active; the previous one stays published.",
  ["user-created"] = "The user was created.",
  ["user-disabled"] = "The user was disabled and signed out everywhere.",
  ["user-enabled"] = "The user was enabled.",
  ["user-deleted"] = "The user was deleted.",
  ["reset-sent"] = "A password reset link was sent.",
  ["sessions-revoked"] = "All of the user's sessions were revoked.",
  ["session-revoked"] = "The session was revoked.",
}
local ERRORS = {
  ["client-gone"] = "That client does not exist any more.",
  ["bad-alg"] = "Choose RS256, ES256 or EdDSA.",
  ["not-found"] = "That user does not exist any more.",
  ["session-gone"] = "That session had already ended.",
  ["self"] = "You cannot disable or delete your own account.",
  ["mail"] = "The email could not be sent. The server log has the details.",
}

console.trim = form_fields.trim
console.urlencode = form_fields.urlencode
local urlencode = form_fields.urlencode

-- "a=1&b=2" from an ordered list of { name, value }; empty values are left out.
function console.query(pairs_list)
  local parts = {}
  for _, p in ipairs(pairs_list) do
    if p[2] ~= nil and p[2] ~= "" then
      parts[#parts + 1] = urlencode(p[1]) .. "=" .. urlencode(p[2])
    end
  end
  return table.concat(parts, "&")
end

function console.with_query(path, q)
  if q == "" then return path end
  return path .. (path:find("?", 1, true) and "&" or "?") .. q
end

-- A console page: the layout needs the admin's email and CSRF token for its sign-out form.
function console.render(req, s, name, ctx, status)
  ctx.me = { id = s.user.id, email = s.user.email }
  ctx.csrf_token = s.csrf_token
  ctx.notice = ctx.notice or NOTICES[req.query.notice or ""]
  ctx.error = ctx.error or ERRORS[req.query.error or ""]
  return page.html(name, ctx, status)
end

function console.message(req, s, title, text, status, section)
  return console.render(req, s, "console/message.html", { title = title, message = text, section = section }, status)
end

-- The signed-in admin's session, or nil and the response to send instead.
function console.guard(req)
  local s = session.load(req)
  if not s then
    -- Come back here after signing in; a POST's path is no page, so go to the console then.
    local back = "/auth/console"
    if req.method == "GET" then
      local names = {}
      for k in pairs(req.query) do names[#names + 1] = k end
      table.sort(names)
      local list = {}
      for _, k in ipairs(names) do list[#list + 1] = { k, req.query[k] } end
      back = console.with_query(req.path, console.query(list))
    end
    return nil, http.redirect("/auth/login?return_to=" .. urlencode(back), 303)
  end
  if not roles.has(s.user, "admin") then
    return nil, page.html("message.html", {
      title = "Forbidden",
      message = "You need the admin role.",
      kind = "error",
      detail = "You are signed in as " .. (s.user.email or "") .. ".",
      signout = true,
      csrf_token = s.csrf_token,
      links = { { href = "/auth/welcome", label = "Back" } },
    }, 403)
  end
  if req.method ~= "GET" and not session.check_csrf(req) then
    return nil, console.message(req, s, "Form expired", console.EXPIRED, 403)
  end
  return s
end

-- The audit log's actor for what the signed-in admin does.
function console.actor(s)
  return "user:" .. s.user.id
end

function console.user_path(id)
  return "/auth/console/users/" .. urlencode(id)
end

-- Where a revoke button may send the browser back to: a console path, nothing else.
function console.safe_back(v)
  if type(v) ~= "string" or #v > 2048 then return nil end
  if v:find("[^!-~]") or v:find("\\", 1, true) or v:find("#", 1, true) or v:find("..", 1, true) then
    return nil
  end
  if v == "/auth/console" or v:sub(1, 14) == "/auth/console/" or v:sub(1, 14) == "/auth/console?" then
    return v
  end
  return nil
end

return console
