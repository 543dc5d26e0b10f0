-- The consent page of the OpenID provider. The authorization endpoint sends the browser here
-- (`/auth/consent?consent_challenge=...`) once the user is signed in, unless the client skips
-- consent or the user already allowed these scopes; the answer goes back through assay.oidc.
local http = require("assay.http")
local session = require("assay.session")
local oidc = require("assay.oidc")
local page_lib = require("lib.page")

-- What each scope lets the application do, in plain words.
local SCOPE_WORDS = {
  openid = "Know who you are (your account identifier)",
  profile = "See your name and profile picture",
  email = "See your email address",
  groups = "See the groups you belong to",
  address = "See your postal address",
  phone = "See your phone number",
  offline_access = "Stay signed in and act for you while you are away",
}

-- The consent page's URL carries the authorization request's challenge: no Referer.
local function page(ctx, status)
  return page_lib.html("consent.html", ctx, status, { token_in_url = true })
end

local function gone()
  return page_lib.html("message.html", {
    title = "This request has expired",
    message = "Go back to the application and sign in again.",
  }, 400, { token_in_url = true })
end

local function described(info)
  local scopes = {}
  for _, s in ipairs(info.scopes or {}) do
    scopes[#scopes + 1] = { name = s, words = SCOPE_WORDS[s] or ("Use the " .. s .. " permission") }
  end
  return scopes
end

http.route("GET", "/auth/consent", function(req)
  local challenge = req.query.consent_challenge
  local info = challenge and oidc.consent_request(challenge)
  if not info then return gone() end
  return page({
    challenge = challenge,
    client = info.client,
    user = info.user,
    scopes = described(info),
    csrf_token = session.csrf_token(req),
  })
end)

http.route("POST", "/auth/consent", function(req)
  local challenge = req.form.consent_challenge
  local info = challenge and oidc.consent_request(challenge)
  if not info then return gone() end
  if not session.check_csrf(req) then
    return page({
      challenge = challenge, client = info.client, user = info.user, scopes = described(info),
      csrf_token = session.csrf_token(req), error = "Your form expired, please try again.",
    }, 403)
  end
  local next_url, err
  if req.form.decision == "allow" then
    next_url, err = oidc.accept_consent(challenge, { remember = req.form.remember == "1" })
  else
    next_url, err = oidc.reject_consent(challenge, { error = "access_denied", error_description = "the user denied the request" })
  end
  if not next_url then error(err) end
  return http.redirect(next_url, 303)
end)
