-- The auth module's demonstration route: a flow rendering a template.
-- Override it by putting a hello.lua in [flows] dir.
local http = require("assay.http")
local template = require("assay.template")

http.route("GET", "/auth/hello", function(req)
  local html, err = template.render("hello.html", { name = req.query.name or "world" })
  if not html then
    error(err)
  end
  return http.html(html)
end)
