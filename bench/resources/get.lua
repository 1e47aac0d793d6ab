-- wrk script for bench/resources/run.sh: authenticated GET of wrk's URL (path and query
-- as given on the command line). The bearer token comes from MANIFOLD_TOKEN. Prints one
-- machine-readable line after wrk's own output (latencies in microseconds; non2xx counts
-- statuses outside 200-399):
--   RESULT requests=N duration_us=N bytes=N p50_us=N p99_us=N max_us=N non2xx=N sockerr=N
local lib = dofile(((debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$")) or ".") .. "/../lib.lua")
local token = os.getenv("MANIFOLD_TOKEN") or ""

init = function(args)
  -- Built once per thread: the request is static, so wrk sends the same bytes every time.
  wrk.headers["Authorization"] = "Bearer " .. token
end

done = function(summary, latency, requests)
  lib.result_line(summary, latency)
end
