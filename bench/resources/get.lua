-- wrk script for bench/resources/run.sh: authenticated GET of wrk's URL (path and query
-- as given on the command line). The bearer token comes from MANIFOLD_TOKEN. Prints one
-- machine-readable line after wrk's own output (latencies in microseconds; non2xx counts
-- statuses outside 200-399):
--   RESULT requests=N duration_us=N bytes=N p50_us=N p99_us=N max_us=N non2xx=N sockerr=N
local token = os.getenv("MANIFOLD_TOKEN") or ""

init = function(args)
  -- Built once per thread: the request is static, so wrk sends the same bytes every time.
  wrk.headers["Authorization"] = "Bearer " .. token
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT requests=%d duration_us=%d bytes=%d p50_us=%d p99_us=%d max_us=%d non2xx=%d sockerr=%d\n",
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(99), latency.max,
    e.status, e.connect + e.read + e.write + e.timeout))
end
