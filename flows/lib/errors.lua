-- Reading the "code: message" errors the stdlib returns (`nil, "conflict: email is taken"`).
--   local errors = require("lib.errors")
--   errors.code_of(err)     --> "conflict" (nil when the text has no code)
--   errors.message_of(err)  --> "Email is taken": the human part, capitalised, for a page
local errors = {}

function errors.code_of(err)
  return tostring(err):match("^([%w_]+):")
end

function errors.message_of(err)
  local msg = tostring(err):gsub("^[%w_]+:%s*", "")
  return (msg:gsub("^%l", string.upper))
end

-- The N of "... N seconds" in a busy or throttled error, for Retry-After (`default`, or "1",
-- when absent).
function errors.retry_after(err, default)
  return tostring(err):match("(%d+) seconds") or default or "1"
end

return errors
