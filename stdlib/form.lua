-- assay.form: reading form fields safely, shared by the bundled flows. Every value is bounded
-- in length before anything looks inside it, and trimming walks the string once from each end
-- (a pattern such as "^%s*(.-)%s*$" is quadratic in inner whitespace: the review stalled the
-- engine with one 40 KB login post). Reference: stdlib/form.md.
local require = ...
local errors = require("assay.errors")
local byte, sub, format, gsub = string.byte, string.sub, string.format, string.gsub

local M = {}

-- The longest value a field may have when the caller names no limit.
M.DEFAULT_MAX = 1024

-- ASCII whitespace as Lua's %s sees it: space, \t, \n, \v, \f, \r.
local function is_space(b)
  return b == 32 or (b >= 9 and b <= 13)
end

-- `s` without leading and trailing whitespace; "" for nil. Linear in #s.
function M.trim(s)
  if s == nil then return "" end
  s = tostring(s)
  local i, j = 1, #s
  while i <= j and is_space(byte(s, i)) do i = i + 1 end
  while j >= i and is_space(byte(s, j)) do j = j - 1 end
  return sub(s, i, j)
end

-- The trimmed value of `t[name]` ("" when absent), or nil and a too_long error when the raw
-- value is longer than `max` bytes: the length is checked before any other work on it.
function M.value(t, name, max)
  max = max or M.DEFAULT_MAX
  local v = t and t[name]
  if v == nil then return "" end
  v = tostring(v)
  if #v > max then
    return nil, errors.new("too_long", format("%s is longer than %d bytes", name, max), { field = name })
  end
  return M.trim(v)
end

-- `form.value` of a field of the request's form body.
function M.field(req, name, max)
  return M.value(req.form, name, max)
end

-- Percent-encodes everything but RFC 3986's unreserved characters.
function M.urlencode(s)
  return (gsub(tostring(s), "[^%w%-%._~]", function(c)
    return format("%%%02X", byte(c))
  end))
end

return M
