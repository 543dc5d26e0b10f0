-- Reading the errors stdlib calls return: `nil, err`, where err.code is a stable word
-- ("conflict", "throttled", ...), err.message the text for a person, and details such as
-- err.retry_after (seconds) or err.field ride beside them. Nothing here parses English.
--   local errors = require("lib.errors")
--   errors.code_of(err)          --> "conflict" (nil for something that is not a stdlib error)
--   errors.message_of(err)       --> "A user with the email ... exists": capitalised, for a page
--   errors.retry_after(err, "60") --> err.retry_after as text, for a Retry-After header
local errors = {}

function errors.code_of(err)
  return type(err) == "table" and err.code or nil
end

function errors.message_of(err)
  local msg = type(err) == "table" and err.message or tostring(err)
  return (msg:gsub("^%l", string.upper))
end

-- The seconds to wait of a busy or throttled error (`default`, or "1", when it has none).
function errors.retry_after(err, default)
  local secs = type(err) == "table" and err.retry_after
  return secs and tostring(secs) or default or "1"
end

return errors
