-- Self-service sign-up: GET/POST /auth/register, only while settings.registration_enabled.
-- The answer is the same "check your email" page whether or not the address already has an
-- account, so the form cannot be used to find out who has one: a new account gets a link to
-- verify its address and then signs in with its password; an existing owner gets a mail
-- saying someone tried.
local http = require("assay.http")
local users = require("assay.users")
local session = require("assay.session")
local mail = require("assay.mail")
local log = require("assay.log")
local settings = require("assay.settings")
local form_fields = require("assay.form")
local throttle = require("assay.throttle")
local page = require("lib.page")
local errors = require("lib.errors")
local message_of = errors.message_of

local EXPIRED = "Your form expired, please try again."
local LIMITS = settings.rate_limits -- [auth.brute_force], per hour

-- Same page as an unknown path, so a closed registration looks like no registration at all.
local function not_found(req)
  return page.html("error.html", {
    status = 404,
    title = "Not Found",
    message = "nothing is served at " .. req.path,
    request_id = req.request_id,
  }, 404)
end

local function form(req, ctx, status)
  ctx.csrf_token = session.csrf_token(req)
  ctx.min_length = settings.password_min_length -- a hint for the browser; the server decides
  return page.html("register.html", ctx, status)
end

http.route("GET", "/auth/register", function(req)
  if settings.registration_enabled ~= true then return not_found(req) end
  return form(req, {})
end)

http.route("POST", "/auth/register", function(req)
  if settings.registration_enabled ~= true then return not_found(req) end
  local f = req.form
  local email, email_too_long = form_fields.field(req, "email", 254)
  local display_name, name_too_long = form_fields.field(req, "display_name", 800)
  local password = f.password or ""
  -- Passwords are never sent back into the form.
  local ctx = { email = email, display_name = display_name }

  if not session.check_csrf(req) then
    ctx.error = EXPIRED
    return form(req, ctx, 403)
  end
  if email_too_long or name_too_long then
    ctx.error = email_too_long and "That email address is too long." or "That name is too long."
    return form(req, ctx, 400)
  end
  if email == "" then
    ctx.error = "Enter your email address."
    return form(req, ctx, 422)
  end
  if password == "" then
    ctx.error = "Choose a password."
    return form(req, ctx, 422)
  end
  if password ~= (f.password_confirm or "") then
    ctx.error = "The passwords do not match."
    return form(req, ctx, 422)
  end

  local ok, terr = throttle.hit("register:ip:" .. req.ip, LIMITS.registration_per_ip, LIMITS.window_secs)
  if not ok and errors.code_of(terr) == "throttled" then
    local secs = errors.retry_after(terr, tostring(LIMITS.window_secs))
    ctx.error = "Too many attempts. Try again in " .. secs .. " seconds."
    return form(req, ctx, 429):header("Retry-After", secs)
  end
  -- Counted for every address, new or taken (the same work either way); it caps how many
  -- notices a stranger can make an account's owner receive.
  local may_mail = throttle.hit("register:address:" .. email:lower(), LIMITS.mails_per_address, LIMITS.window_secs)

  -- The password is hashed either way (users.create hashes before it finds the address
  -- taken), so the two cases cost the same.
  local user, err = users.create({
    email = email,
    password = password,
    display_name = display_name ~= "" and display_name or nil,
  })
  local product = settings.product_name or "assay"
  local base = (settings.public_url or ""):gsub("/+$", "")
  if user then
    -- The account exists from here on; the link is made and mailed after the response.
    users.mail_link(user.id, {
      purpose = "verify",
      url = base .. "/auth/verify?token=",
      subject = "Verify your email address",
      text = "Welcome to " .. product .. ".\n\n"
        .. "Confirm your email address by opening this link within 24 hours:\n\n"
        .. "{link}\n\n"
        .. "If you did not create this account, ignore this message.\n",
    })
  else
    local code = errors.code_of(err)
    if code == "conflict" and not may_mail then
      log.info("registration notice skipped: too many for this address this hour")
    elseif code == "conflict" then
      -- Someone (perhaps the owner) tried to sign up with an address that has an account:
      -- the owner hears of it, the visitor sees the same page as for a new account.
      local queued, merr = mail.queue({
        to = email,
        subject = "Someone tried to create a " .. product .. " account with your address",
        text = "Someone tried to create a new " .. product .. " account with this email address, "
          .. "which already has one.\n\n"
          .. "If it was you, sign in: " .. base .. "/auth/login\n"
          .. "Forgot your password? Reset it: " .. base .. "/auth/recovery\n\n"
          .. "If it was not you, ignore this message: nothing has changed.\n",
      })
      if not queued then log.warn("registration notice not queued", { error = merr }) end
    elseif code == "weak_password" or code == "invalid" then
      ctx.error = message_of(err)
      return form(req, ctx, 422)
    elseif code == "busy" then
      ctx.error = "We are very busy right now. Try again in a moment."
      return form(req, ctx, 503):header("Retry-After", errors.retry_after(err))
    else
      error(err)
    end
  end

  return page.html("message.html", {
    title = "Check your email",
    message = "We sent a message to " .. email .. ". Open the link in it to finish creating your account.",
    kind = "notice",
    detail = "Then sign in with your email address and password.",
    links = { { href = "/auth/login", label = "Sign in" } },
  })
end)
