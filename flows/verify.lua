-- Email verification.
--   GET  /auth/verify?token=...  a page with a button; the token is NOT used up on GET
--                                (mail scanners and link previews open links first)
--   POST /auth/verify            use the token, mark the address verified
--   POST /auth/verify/resend     signed in: mail a fresh link
local http = require("assay.http")
local users = require("assay.users")
local session = require("assay.session")
local audit = require("assay.audit")
local mail = require("assay.mail")
local log = require("assay.log")
local settings = require("assay.settings")
local form_fields = require("assay.form")
local page_lib = require("lib.page")

local EXPIRED = "Your form expired, please try again."

local urlencode = form_fields.urlencode

-- The page's URL carries the token: never send it on in a Referer.
local function page(name, ctx, status)
  return page_lib.html(name, ctx, status, { token_in_url = true })
end

local function message(title, text, kind, status, links)
  return page("message.html", { title = title, message = text, kind = kind, links = links }, status)
end

local function invalid_link()
  return message("Link expired", "This link is invalid or has expired.", "error", 400, {
    { href = "/auth/welcome", label = "Sign in to get a new link" },
  })
end

http.route("GET", "/auth/verify", function(req)
  local token = req.query.token or ""
  if token == "" then return invalid_link() end
  return page("verify.html", { csrf_token = session.csrf_token(req), token = token })
end)

http.route("POST", "/auth/verify", function(req)
  local token = req.form.token or ""
  if token == "" then return invalid_link() end
  if not session.check_csrf(req) then
    return page("verify.html", { csrf_token = session.csrf_token(req), token = token, error = EXPIRED }, 403)
  end
  local user = users.consume_token(token, "verify")
  if not user then return invalid_link() end
  local updated, err = users.update(user.id, { email_verified = true })
  if not updated then error(err) end
  audit.append({ action = "email.verified", actor = "user:" .. user.id, target = user.id })
  -- A new account (registration never signs in) continues at the sign-in form.
  local next_link = session.load(req) and { href = "/auth/welcome", label = "Continue" }
    or { href = "/auth/login", label = "Sign in" }
  return message("Email verified", "Your email address is verified.", "notice", 200, { next_link })
end)

http.route("POST", "/auth/verify/resend", function(req)
  local s = session.load(req)
  if not s then
    return http.redirect("/auth/login?return_to=" .. urlencode("/auth/welcome"), 303)
  end
  if not session.check_csrf(req) then
    return message("Form expired", EXPIRED, "error", 403, { { href = "/auth/welcome", label = "Back" } })
  end
  if s.user.email_verified then
    return message("Already verified", "Your email address is already verified.", "notice", 200, {
      { href = "/auth/welcome", label = "Back" },
    })
  end

  local token, err = users.issue_token(s.user.id, "verify")
  if not token then error(err) end
  local link = (settings.public_url or ""):gsub("/+$", "") .. "/auth/verify?token=" .. urlencode(token)
  local ok, merr = mail.send({
    to = s.user.email,
    subject = "Verify your email address",
    text = "Confirm your email address for " .. (settings.product_name or "assay")
      .. " by opening this link within 24 hours:\n\n" .. link .. "\n\n"
      .. "If you did not ask for this, ignore this message.\n",
  })
  if not ok then
    log.warn("verification mail not sent", { user = s.user.id, error = merr })
    return message("Not sent", "We could not send the email. Try again later.", "error", 502, {
      { href = "/auth/welcome", label = "Back" },
    })
  end
  return message("Check your email", "We sent a new link.", "notice", 200, {
    { href = "/auth/welcome", label = "Back" },
  })
end)
