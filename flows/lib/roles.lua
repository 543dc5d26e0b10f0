-- Roles of a user as the stdlib returns it (`user.roles`, a list of names).
--   local roles = require("lib.roles")
--   if roles.has(s.user, "admin") then ... end
local roles = {}

function roles.has(user, role)
  for _, r in ipairs(user and user.roles or {}) do
    if r == role then return true end
  end
  return false
end

return roles
