-- Password recovery by email link.
--   GET  /auth/recovery        form: email address
--   POST /auth/recovery        mail a reset link if the account exists; the answer never says
--   GET  /auth/recovery/reset  form: new password (the token is NOT used up here: mail
--                              scanners open links before people do)
--   POST /auth/recovery/reset  use the token, set the password, end every session
local http = require("assay.http")
local users = require("assay.users")
local password = require("assay.password")
local session = require("assay.session")
local audit = require("assay.audit")
local settings = require("assay.settings")
local throttle = require("assay.throttle")
local form_fields = require("assay.form")
local page_lib = require("lib.page")
local errors = require("lib.errors")
local message_of = errors.message_of

local EXPIRED = "Your form expired, please try again."
local INVALID_LINK = "This link is invalid or has expired."

-- Hourly limits from [auth.brute_force]: requests from one IP (any addresses) are refused
-- past theirs; mails to one address stop past theirs while the page stays the same, so a
-- stranger can neither flood someone's mailbox nor lock its owner out of recovery. Neither
-- says whether the address has an account.
local LIMITS = settings.rate_limits

local page = page_lib.html

-- The reset pages' URL carries the token: never send it on in a Referer.
local function reset_page(name, ctx, status)
  return page_lib.html(name, ctx, status, { token_in_url = true })
end

local function invalid_link()
  return reset_page("message.html", {
    title = "Link expired",
    message = INVALID_LINK,
    kind = "error",
    links = { { href = "/auth/recovery", label = "Request a new link" } },
  }, 400)
end

local function reset_form(req, token, err, status)
  return reset_page("recovery_reset.html", {
    csrf_token = session.csrf_token(req),
    token = token,
    error = err,
    min_length = settings.password_min_length, -- a hint for the browser; the server decides
  }, status)
end

http.route("GET", "/auth/recovery", function(req)
  return page("recovery.html", { csrf_token = session.csrf_token(req) })
end)

http.route("POST", "/auth/recovery", function(req)
  local email, too_long = form_fields.field(req, "email", 254)
  if not session.check_csrf(req) then
    return page("recovery.html", { csrf_token = session.csrf_token(req), email = email, error = EXPIRED }, 403)
  end
  if too_long then
    return page("recovery.html", { csrf_token = session.csrf_token(req), error = "That email address is too long." }, 400)
  end
  if email == "" then
    return page("recovery.html", {
      csrf_token = session.csrf_token(req),
      error = "Enter your email address.",
    }, 422)
  end
  local ok, terr = throttle.hit("recovery:ip:" .. req.ip, LIMITS.recovery_per_ip, LIMITS.window_secs)
  if not ok and errors.code_of(terr) == "throttled" then
    local secs = errors.retry_after(terr, tostring(LIMITS.window_secs))
    return page("recovery.html", {
      csrf_token = session.csrf_token(req),
      email = email,
      error = "Too many requests. Try again in " .. secs .. " seconds.",
    }, 429):header("Retry-After", secs)
  end
  -- Counted for every address, known or not, so the work is the same either way.
  local may_mail = throttle.hit("recovery:address:" .. email:lower(), LIMITS.mails_per_address, LIMITS.window_secs)

  local user, ferr = users.find_by_email(email)
  if not user then
    local code = errors.code_of(ferr)
    -- An unknown or malformed address gets the same answer as a known one; a broken
    -- database does not.
    if code ~= "not_found" and code ~= "invalid" then error(ferr) end
  end
  -- The token and the mail are made after the response, and this call costs the same with
  -- nobody to mail: the answer's timing does not tell which addresses have accounts.
  local product = settings.product_name or "assay"
  users.mail_link(may_mail and user and not user.disabled and user.id or nil, {
    purpose = "recovery",
    url = (settings.public_url or ""):gsub("/+$", "") .. "/auth/recovery/reset?token=",
    subject = "Reset your " .. product .. " password",
    text = "Someone asked to reset the password of your " .. product .. " account.\n\n"
      .. "Open this link within an hour to choose a new password:\n\n"
      .. "{link}\n\n"
      .. "If it was not you, ignore this message: your password stays as it is.\n",
  })
  audit.append({
    action = "recovery.requested",
    target = user and user.id or nil,
    details = { email = email, found = user ~= nil },
  })

  return page("message.html", {
    title = "Check your email",
    message = "If an account exists for that address, we sent a link.",
    kind = "notice",
    detail = "The link works once and expires after an hour.",
    links = { { href = "/auth/login", label = "Back to sign in" } },
  })
end)

http.route("GET", "/auth/recovery/reset", function(req)
  local token = req.query.token or ""
  if token == "" then return invalid_link() end
  return reset_form(req, token)
end)

http.route("POST", "/auth/recovery/reset", function(req)
  local f = req.form
  local token = f.token or ""
  local pw = f.password or ""
  if token == "" then return invalid_link() end
  if not session.check_csrf(req) then
    return reset_form(req, token, EXPIRED, 403)
  end
  if pw ~= (f.password_confirm or "") then
    return reset_form(req, token, "The passwords do not match.", 422)
  end
  -- Checked before the token is used up, so a weak password does not cost the link.
  local good, perr = password.check_policy(pw)
  if not good then
    return reset_form(req, token, message_of(perr), 422)
  end

  local user = users.consume_token(token, "recovery")
  if not user then return invalid_link() end

  local ok, serr = users.set_password(user.id, pw)
  if not ok then
    -- The token is spent by now; say so and offer a new one.
    return reset_page("message.html", {
      title = "Password not changed",
      message = message_of(serr),
      kind = "error",
      links = { { href = "/auth/recovery", label = "Request a new link" } },
    }, 422)
  end
  -- Whoever had the old password (or a stolen session) is out.
  session.revoke_all(user.id)
  audit.append({ action = "password.reset", actor = "user:" .. user.id, target = user.id })
  -- Opening the mailed link proves the mailbox.
  if not user.email_verified then
    users.update(user.id, { email_verified = true })
  end
  return http.redirect("/auth/login?reset=1", 303)
end)
