-- assay.auth: the admin API as a Lua client, for operator scripts (`assay-engine run`) and
-- flows. Every call is an HTTPS request with the admin API key; answers are decoded JSON.
-- Reference: stdlib/auth.md.
local require = ...
local http = require("assay.http")
local json = require("assay.json")

local M = {}

local urlencode = require("assay.form").urlencode

local function query(opts)
  if opts == nil then return "" end
  local keys = {}
  for k, v in pairs(opts) do
    if v ~= nil then keys[#keys + 1] = k end
  end
  table.sort(keys)
  local parts = {}
  for _, k in ipairs(keys) do parts[#parts + 1] = urlencode(k) .. "=" .. urlencode(opts[k]) end
  if #parts == 0 then return "" end
  return "?" .. table.concat(parts, "&")
end

local errors = require("assay.errors")

-- Errors have the shape every stdlib call's have (assay.errors), with err.status, the HTTP
-- status, when the API answered.
local function failure(code, message, status)
  return errors.new(code, message, { status = status })
end

-- One admin API call: the decoded body, or nil, err (the API's own error code, or
-- http_error/bad_json for the transport).
local function call(c, method, path, body)
  local req = {
    method = method,
    url = c.base .. path,
    headers = { ["Authorization"] = "Bearer " .. c.api_key, ["Accept"] = "application/json" },
    timeout_ms = c.timeout_ms,
  }
  if body ~= nil then req.json = body end
  local res, err = http.request(req)
  if not res then return nil, err end
  if res.status == 204 then return true end
  local decoded, derr = json.decode(res.body)
  if res.status >= 400 then
    -- The API's own error code; anything else (a proxy's page, an odd body) is http_error.
    local code = decoded and type(decoded) == "table" and decoded.error
    if type(code) == "string" and #code <= 64 and code:match("^[a-z0-9_]+$") then
      return nil, failure(code, tostring(decoded.error_description or ""), res.status)
    end
    return nil, failure("http_error", "status " .. res.status, res.status)
  end
  if decoded == nil then return nil, failure("bad_json", tostring(derr and derr.message or derr)) end
  return decoded
end

-- A namespace of methods over one resource.
local function resource(c, path, extra)
  local r = {}
  function r:list(opts) return call(c, "GET", path .. query(opts)) end
  function r:get(id) return call(c, "GET", path .. "/" .. urlencode(id)) end
  function r:create(t) return call(c, "POST", path, t) end
  function r:update(id, t) return call(c, "PATCH", path .. "/" .. urlencode(id), t) end
  function r:delete(id) return call(c, "DELETE", path .. "/" .. urlencode(id)) end
  for name, fn in pairs(extra or {}) do r[name] = fn end
  return r
end

-- auth.client{ engine_url, api_key [, timeout_ms] }
function M.client(opts)
  if type(opts) ~= "table" then error("auth.client: pass a table { engine_url = ..., api_key = ... }", 2) end
  if type(opts.engine_url) ~= "string" or not opts.engine_url:match("^https?://") then
    error("auth.client: engine_url must be an http(s) URL", 2)
  end
  if type(opts.api_key) ~= "string" or opts.api_key == "" then
    error("auth.client: api_key is required (for example env.get(\"ASSAY_ADMIN_KEY\"))", 2)
  end
  local c = { base = opts.engine_url:gsub("/+$", "") .. "/auth/admin/auth", api_key = opts.api_key, timeout_ms = opts.timeout_ms }
  c.users = resource(c, "/users", {
    password_reset = function(_, id) return call(c, "POST", "/users/" .. urlencode(id) .. "/password-reset") end,
    revoke_sessions = function(_, id) return call(c, "DELETE", "/users/" .. urlencode(id) .. "/sessions") end,
  })
  c.oidc_clients = resource(c, "/oidc-clients", {
    rotate_secret = function(_, id) return call(c, "POST", "/oidc-clients/" .. urlencode(id) .. "/rotate-secret") end,
  })
  c.sessions = {
    list = function(_, o) return call(c, "GET", "/sessions" .. query(o)) end,
    revoke = function(_, id) return call(c, "DELETE", "/sessions/" .. urlencode(id)) end,
    revoke_all = function(_, user_id) return call(c, "DELETE", "/sessions" .. query({ user_id = user_id })) end,
  }
  c.audit = { list = function(_, o) return call(c, "GET", "/audit" .. query(o)) end }
  c.jwks = {
    list = function() return call(c, "GET", "/jwks") end,
    rotate = function(_, alg) return call(c, "POST", "/jwks/rotate", { alg = alg or "RS256" }) end,
  }
  return c
end

return M
