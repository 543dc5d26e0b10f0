-- The benchmark route: the smallest useful flow (compare with the Rust route /healthz).
local http = require("assay.http")
http.route("GET", "/bench/lua", function(req)
  return http.json({ status = "ok" })
end)
