-- wrk reporter for bench/http/run.sh: one machine-readable line after wrk's own output.
-- Latencies are in microseconds; non2xx counts responses with a status outside 200-399.
local lib = dofile(((debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$")) or ".") .. "/../lib.lua")
done = function(summary, latency, requests)
  lib.result_line(summary, latency)
end
