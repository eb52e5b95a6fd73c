-- wrk script for `tools/dev bench`: RFC 7662 introspection (POST /oauth2/introspect) of live
-- access tokens, as the portal client they were issued to.  BENCH_FILE has one access token
-- a line; BENCH_BASIC_AUTH is base64(client_id:client_secret).  Only "active":true counts.
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "common.lua")

local headers = form_headers()

bench {
  file = assert(os.getenv("BENCH_FILE"), "BENCH_FILE is not set"),
  expect = '"active":%s*true',
  build = function(line)
    return wrk.format("POST", "/oauth2/introspect", headers, "token=" .. form_encode(line))
  end,
}
