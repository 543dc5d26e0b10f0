-- One page-header policy for every HTML page a flow answers, and the helper that renders one.
--   local page = require("lib.page")
--   return page.html("login.html", ctx, 200)                          -- Referrer-Policy: same-origin
--   return page.html("message.html", ctx, 400, { token_in_url = true }) -- Referrer-Policy: no-referrer
-- Every page gets: Cache-Control: no-store (pages carry CSRF tokens and personal data),
-- X-Frame-Options: DENY and Content-Security-Policy: frame-ancestors 'none' (no framing, so
-- no clickjacking), and one Referrer-Policy: "no-referrer" for a page whose URL carries a
-- secret (a recovery or verification token, a consent challenge), so that no link or resource
-- on it sends the URL on; "same-origin" everywhere else.
local http = require("assay.http")
local template = require("assay.template")
local settings = require("assay.settings")

local page = {}

page.CACHE_CONTROL = "no-store"
page.FRAME_OPTIONS = "DENY"
page.CSP = "frame-ancestors 'none'"
page.REFERRER = "same-origin"
page.REFERRER_TOKEN_IN_URL = "no-referrer"

-- The policy's headers on `resp` (any response; returns it). opts.token_in_url: the page's
-- URL carries a secret.
function page.headers(resp, opts)
  local referrer = page.REFERRER
  if opts and opts.token_in_url then referrer = page.REFERRER_TOKEN_IN_URL end
  return resp
    :header("Cache-Control", page.CACHE_CONTROL)
    :header("X-Frame-Options", page.FRAME_OPTIONS)
    :header("Content-Security-Policy", page.CSP)
    :header("Referrer-Policy", referrer)
end

-- Renders template `name` with `ctx` (plus product_name) as an HTML answer with the policy's
-- headers. A template that fails to render is an engine fault (a 500, cause in the log).
function page.html(name, ctx, status, opts)
  ctx = ctx or {}
  ctx.product_name = settings.product_name
  return page.headers(http.html(assert(template.render(name, ctx)), status or 200), opts)
end

return page
