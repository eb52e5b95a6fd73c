-- Shared by the wrk scripts of `tools/dev bench` (loaded with dofile by exchange.lua,
-- introspect.lua and healthz.lua).  A script calls bench{...} with:
--   file     path of the request file (one request a line), or nil for a fixed request
--   build    function(line) -> the request (a string from wrk.format)
--   expect   optional Lua pattern a 2xx body must match (else the response counts as unexpected)
-- Each of BENCH_THREADS threads (the -t of wrk) cycles through its own share of the lines
-- (lines i, i+T, i+2T, …), so together they use every line.  done() prints one line:
--   BENCH requests=N duration_us=N rps=N p50_us=N p90_us=N p99_us=N max_us=N
--         non2xx=N unexpected=N socket_errors=N
-- (a run with non2xx, unexpected or socket_errors > 0 is not a valid figure).

local threads = {}
local counter = 0

function bench(opts)
  local nthreads = tonumber(os.getenv("BENCH_THREADS") or "1")
  local requests, next_index = {}, 1

  function setup(thread)
    counter = counter + 1
    thread:set("thread_index", counter)
    table.insert(threads, thread)
  end

  function init(args)
    non2xx, unexpected = 0, 0
    local index = thread_index or 1
    if opts.file == nil then
      requests[1] = opts.build(nil)
      return
    end
    local f = assert(io.open(opts.file, "r"), "cannot open " .. opts.file)
    local n = 0
    for line in f:lines() do
      if line ~= "" then
        n = n + 1
        if (n - 1) % nthreads == index - 1 then
          requests[#requests + 1] = opts.build(line)
        end
      end
    end
    f:close()
    assert(#requests > 0, "no requests for thread " .. index .. " in " .. opts.file)
  end

  function request()
    local r = requests[next_index]
    next_index = next_index + 1
    if next_index > #requests then
      next_index = 1
    end
    return r
  end

  function response(status, headers, body)
    if status < 200 or status > 299 then
      non2xx = non2xx + 1
    elseif opts.expect ~= nil and (body == nil or not body:find(opts.expect)) then
      unexpected = unexpected + 1
    end
  end

  function done(summary, latency, _)
    local bad_status, bad_body = 0, 0
    for _, t in ipairs(threads) do
      bad_status = bad_status + (t:get("non2xx") or 0)
      bad_body = bad_body + (t:get("unexpected") or 0)
    end
    local e = summary.errors
    local seconds = summary.duration / 1e6
    io.write(string.format(
      "BENCH requests=%d duration_us=%d rps=%.1f p50_us=%d p90_us=%d p99_us=%d max_us=%d "
        .. "non2xx=%d unexpected=%d socket_errors=%d\n",
      summary.requests, summary.duration, summary.requests / seconds, latency:percentile(50),
      latency:percentile(90), latency:percentile(99), latency.max, bad_status, bad_body,
      e.connect + e.read + e.write + e.timeout))
  end
end

-- application/x-www-form-urlencoded value.
function form_encode(s)
  return (s:gsub("[^%w%-%._~]", function(c)
    return string.format("%%%02X", string.byte(c))
  end))
end

function form_headers()
  return {
    ["Authorization"] = "Basic " .. assert(os.getenv("BENCH_BASIC_AUTH"), "BENCH_BASIC_AUTH is not set"),
    ["Content-Type"] = "application/x-www-form-urlencoded",
  }
end
