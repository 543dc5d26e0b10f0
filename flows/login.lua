-- Password sign-in. GET /auth/login shows the form; POST /auth/login checks the password,
-- starts a session and sends the browser on to `return_to` (a path on this origin only).
-- When the OpenID provider sends the browser here for an application
-- (`?login_challenge=...`), the form says which application, and a successful sign-in is
-- reported with oidc.accept_login, which gives the URL to continue with; Cancel reports
-- oidc.reject_login (the application gets access_denied).
local http = require("assay.http")
local users = require("assay.users")
local session = require("assay.session")
local settings = require("assay.settings")
local oidc = require("assay.oidc")
local form_fields = require("assay.form")
local page = require("lib.page")
local roles = require("lib.roles")
local errors = require("lib.errors")

-- One message for an unknown email, a wrong password and a disabled account, so the form
-- never tells a stranger which addresses have accounts.
local GENERIC = "Incorrect email or password."
local EXPIRED = "Your form expired, please try again."

local NOTICES = {
  logged_out = "You have signed out.",
  reset = "Your password was changed. Sign in with the new one.",
}

-- A path on this origin, or nil. Only "/x...": "//host" and "/\host" are read by browsers as
-- another host, so those, backslashes anywhere, spaces, control and non-ASCII bytes are out.
-- A string that starts with "/" cannot carry a scheme.
local function safe_return_to(v)
  if type(v) ~= "string" or #v == 0 or #v > 2048 then return nil end
  if v:sub(1, 1) ~= "/" then return nil end
  local second = v:sub(2, 2)
  if second == "/" or second == "\\" then return nil end
  if v:find("[^!-~]") or v:find("\\", 1, true) then return nil end
  return v
end

-- The pending authorization request a challenge names, or nil (unknown or expired).
local function oidc_request(challenge)
  if type(challenge) ~= "string" or challenge == "" then return nil end
  return (oidc.login_request(challenge))
end

local function form(req, ctx, status)
  ctx.csrf_token = session.csrf_token(req)
  if ctx.login_challenge then
    local pending = oidc_request(ctx.login_challenge)
    if pending then
      ctx.client_name = pending.client.name
    else
      ctx.login_challenge = nil
    end
  end
  ctx.registration_enabled = settings.registration_enabled == true
  return page.html("login.html", ctx, status)
end

http.route("GET", "/auth/login", function(req)
  local notice
  if req.query.logged_out == "1" then
    notice = NOTICES.logged_out
  elseif req.query.reset == "1" then
    notice = NOTICES.reset
  end
  local ctx = { return_to = safe_return_to(req.query.return_to), notice = notice, login_challenge = req.query.login_challenge }
  local pending = oidc_request(ctx.login_challenge)
  if pending and type(pending.login_hint) == "string" and pending.login_hint:find("@", 1, true) then
    ctx.email = pending.login_hint
  end
  return form(req, ctx)
end)

http.route("POST", "/auth/login", function(req)
  -- Lengths are bounded before anything else looks at a field (an address is at most 254
  -- bytes); an oversized one is refused before throttling, hashing or auditing.
  local email, too_long = form_fields.field(req, "email", 254)
  local password = req.form.password or ""
  local return_to = safe_return_to(req.form.return_to)
  local challenge = req.form.login_challenge
  if challenge == "" or (challenge and #challenge > 256) then challenge = nil end
  local ctx = { email = email, return_to = return_to, login_challenge = challenge }

  if not session.check_csrf(req) then
    ctx.error = EXPIRED
    return form(req, ctx, 403)
  end
  if too_long then
    ctx.error = "That email address is too long."
    return form(req, ctx, 400)
  end
  if challenge and req.form.cancel == "1" then
    local next_url = oidc.reject_login(challenge, { error = "access_denied", error_description = "the user cancelled the sign-in" })
    if next_url then return http.redirect(next_url, 303) end
    return form(req, { login_challenge = nil, error = "This sign-in request has expired." }, 400)
  end
  if email == "" or password == "" then
    ctx.error = "Enter your email address and password."
    return form(req, ctx, 422)
  end

  local user, err = users.authenticate({ email = email, password = password })
  if not user then
    local code = errors.code_of(err)
    if code == "invalid_credentials" or code == "disabled" then
      ctx.error = GENERIC
      return form(req, ctx, 401)
    elseif code == "invalid" then
      -- Not an address at all (control characters, no "@"): nothing was looked up.
      ctx.error = "Enter a valid email address."
      return form(req, ctx, 400)
    elseif code == "busy" then
      -- The password checks are queued full: a burst. Nothing was counted against anyone.
      ctx.error = "We are very busy right now. Try again in a moment."
      return form(req, ctx, 503):header("Retry-After", errors.retry_after(err))
    elseif code == "throttled" then
      local secs = err.retry_after and tostring(err.retry_after)
      if secs then
        ctx.error = "Too many attempts. Try again in " .. secs .. " seconds."
        return form(req, ctx, 429):header("Retry-After", secs)
      end
      ctx.error = "Too many attempts. Try again later."
      return form(req, ctx, 429)
    end
    error(err)
  end

  session.create(req, user.id, { amr = { "pwd" } })
  if challenge then
    local next_url = oidc.accept_login(challenge, { amr = { "pwd" } })
    if next_url then return http.redirect(next_url, 303) end
    -- The request expired while the user typed: they are signed in, so land as usual.
  end
  local target = return_to or (roles.has(user, "admin") and "/auth/console" or "/auth/welcome")
  return http.redirect(target, 303)
end)
