-- wrk script for `tools/dev bench`: GET /healthz, the HTTP baseline (and the 1,000-connection
-- memory run).
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "common.lua")

bench {
  expect = '"status":"ok"',
  build = function()
    return wrk.format("GET", "/healthz")
  end,
}
