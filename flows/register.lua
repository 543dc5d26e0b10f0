-- Self-service sign-up: GET/POST /auth/register, only while settings.registration_enabled.
-- A new account is signed in at once and gets a link to verify its email address.
local http = require("assay.http")
local template = require("assay.template")
local users = require("assay.users")
local session = require("assay.session")
local mail = require("assay.mail")
local log = require("assay.log")
local settings = require("assay.settings")

local EXPIRED = "Your form expired, please try again."

local function trim(s)
  return (s or ""):match("^%s*(.-)%s*$")
end

local function urlencode(s)
  return (tostring(s):gsub("[^%w%-%._~]", function(c)
    return string.format("%%%02X", c:byte())
  end))
end

-- The human part of "code: message", with a capital first letter.
local function message_of(err)
  local msg = tostring(err):gsub("^[%w_]+:%s*", "")
  return (msg:gsub("^%l", string.upper))
end

local function headers(resp)
  return resp
    :header("Cache-Control", "no-store")
    :header("X-Frame-Options", "DENY")
    :header("Content-Security-Policy", "frame-ancestors 'none'")
end

-- Same page as an unknown path, so a closed registration looks like no registration at all.
local function not_found(req)
  local html = assert(template.render("error.html", {
    status = 404,
    title = "Not Found",
    message = "nothing is served at " .. req.path,
    request_id = req.request_id,
  }))
  return headers(http.html(html, 404))
end

local function form(req, ctx, status)
  ctx.csrf_token = session.csrf_token(req)
  ctx.product_name = settings.product_name
  ctx.min_length = settings.password_min_length -- a hint for the browser; the server decides
  return headers(http.html(assert(template.render("register.html", ctx)), status or 200))
end

http.route("GET", "/auth/register", function(req)
  if settings.registration_enabled ~= true then return not_found(req) end
  return form(req, {})
end)

http.route("POST", "/auth/register", function(req)
  if settings.registration_enabled ~= true then return not_found(req) end
  local f = req.form
  local email = trim(f.email)
  local display_name = trim(f.display_name)
  local password = f.password or ""
  -- Passwords are never sent back into the form.
  local ctx = { email = email, display_name = display_name }

  if not session.check_csrf(req) then
    ctx.error = EXPIRED
    return form(req, ctx, 403)
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

  local user, err = users.create({
    email = email,
    password = password,
    display_name = display_name ~= "" and display_name or nil,
  })
  if not user then
    local code = tostring(err):match("^([%w_]+):")
    if code == "conflict" then
      ctx.error = "That email is already registered."
    elseif code == "weak_password" or code == "invalid" then
      ctx.error = message_of(err)
    else
      error(err)
    end
    return form(req, ctx, 422)
  end

  -- The account exists from here on; a mail failure is logged and the user can ask for a
  -- new link from the welcome page.
  local token, terr = users.issue_token(user.id, "verify")
  if token then
    local base = (settings.public_url or ""):gsub("/+$", "")
    local link = base .. "/auth/verify?token=" .. urlencode(token)
    local product = settings.product_name or "assay"
    local ok, merr = mail.send({
      to = user.email,
      subject = "Verify your email address",
      text = "Welcome to " .. product .. ".\n\n"
        .. "Confirm your email address by opening this link within 24 hours:\n\n"
        .. link .. "\n\n"
        .. "If you did not create this account, ignore this message.\n",
    })
    if not ok then log.warn("verification mail not sent", { user = user.id, error = merr }) end
  else
    log.warn("verification token not issued", { user = user.id, error = terr })
  end

  session.create(req, user.id, { amr = { "pwd" } })
  return http.redirect("/auth/welcome", 303)
end)
