-- Mails the bundled flows send on an administrator's behalf, written once for the console and
-- the admin API.
local users = require("assay.users")
local mail = require("assay.mail")
local settings = require("assay.settings")
local form = require("assay.form")

local mails = {}

-- A recovery link for `user`, sent now (the administrator waits for the answer, and knows the
-- account exists). Returns true, or nil and the "code: message" of what failed.
function mails.admin_reset(user)
  local token, err = users.issue_token(user.id, "recovery")
  if not token then return nil, err end
  local product = settings.product_name or "assay"
  local link = (settings.public_url or ""):gsub("/+$", "") .. "/auth/recovery/reset?token=" .. form.urlencode(token)
  return mail.send({
    to = user.email,
    subject = "Reset your " .. product .. " password",
    text = "An administrator sent you a link to set a new password for your " .. product .. " account.\n\n"
      .. "Open it within an hour:\n\n" .. link .. "\n\n"
      .. "If you did not expect this, you can ignore this message.\n",
  })
end

return mails
