-- The provider's public signing keys (RFC 7517): the active key of each algorithm and the
-- retired ones not yet pruned, so tokens signed before a rotation still verify.
local http = require("assay.http")
local jwks = require("assay.jwks")

http.route("GET", "/.well-known/jwks.json", function(req)
  -- A short cache: relying parties refetch on an unknown kid anyway.
  return http.json(jwks.set())
    :header("Cache-Control", "public, max-age=300")
    :header("Access-Control-Allow-Origin", "*")
end)
