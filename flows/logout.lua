-- Signing out, and the page a signed-in user without the admin role lands on.
--   GET  /auth/logout   confirmation page with a POST form (a GET never signs anyone out:
--                        link prefetchers and <img src> would otherwise do it)
--   POST /auth/logout   revoke the session, clear the cookie, back to the sign-in page
--   GET  /auth/welcome  "Signed in as ..."
local http = require("assay.http")
local session = require("assay.session")
local page = require("lib.page").html
local roles = require("lib.roles")

http.route("GET", "/auth/logout", function(req)
  local s = session.load(req)
  return page("logout.html", {
    csrf_token = session.csrf_token(req),
    email = s and s.user.email,
    signed_in = s ~= nil,
  })
end)

http.route("POST", "/auth/logout", function(req)
  local s = session.load(req)
  -- Without a live session there is nothing to protect: sign-out is idempotent, so an expired
  -- session's stale form still ends on the signed-out page instead of an error.
  if s and not session.check_csrf(req) then
    return page("logout.html", {
      csrf_token = session.csrf_token(req),
      email = s.user.email,
      signed_in = true,
      error = "Your form expired, please try again.",
    }, 403)
  end
  session.logout(req)
  return http.redirect("/auth/login?logged_out=1", 303)
end)

http.route("GET", "/auth/welcome", function(req)
  local s = session.load(req)
  if not s then
    return http.redirect("/auth/login", 303)
  end
  return page("welcome.html", {
    user = s.user,
    csrf_token = s.csrf_token,
    is_admin = roles.has(s.user, "admin"),
  })
end)
