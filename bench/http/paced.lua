-- Paced load for bench/http/run.sh: every other request on a connection waits 1 ms
-- (wrk's timer resolution) before it is sent, so 64 connections offer a steady load well
-- above 50,000 req/s without saturating the box; the p99 then shows the latency the
-- server gives at that rate, not the queueing of two cores shared with wrk at full tilt.
local n = 0
function delay()
  n = n + 1
  return n % 2
end
dofile(os.getenv("BENCH_HTTP_DIR") .. "/report.lua")
