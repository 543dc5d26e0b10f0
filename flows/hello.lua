-- The auth module's demonstration route: a flow rendering a template.
-- Override it by putting a hello.lua in [flows] dir.
local http = require("assay.http")
local page = require("lib.page")

http.route("GET", "/auth/hello", function(req)
  return page.html("hello.html", { name = req.query.name or "world" })
end)
