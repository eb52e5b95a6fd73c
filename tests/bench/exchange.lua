-- wrk script for `tools/dev bench`: RFC 8693 token exchanges (POST /oauth2/token) as a portal
-- client.  BENCH_FILE has one line per (representative, principal) pair:
--   IDENTITY_TOKEN_OF_REPRESENTATIVE bsn:PRINCIPAL
-- BENCH_BASIC_AUTH is base64(client_id:client_secret), BENCH_SCOPE the service code.
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "common.lua")

local headers = form_headers()
local scope = form_encode(os.getenv("BENCH_SCOPE") or "gemeente-afval")

bench {
  file = assert(os.getenv("BENCH_FILE"), "BENCH_FILE is not set"),
  expect = '"access_token":"ey',
  build = function(line)
    local token, principal = line:match("^(%S+)%s+(%S+)$")
    assert(token, "bad line in BENCH_FILE: " .. line)
    local body = "grant_type=" .. form_encode("urn:ietf:params:oauth:grant-type:token-exchange")
      .. "&subject_token=" .. form_encode(token)
      .. "&subject_token_type=" .. form_encode("urn:ietf:params:oauth:token-type:id_token")
      .. "&requested_subject=" .. form_encode(principal)
      .. "&scope=" .. scope
    return wrk.format("POST", "/oauth2/token", headers, body)
  end,
}
