-- Shared by the wrk scripts of bench/*/ (loaded per Lua state with
-- dofile(<dir of the script> .. "/../lib.lua")): a monotonic clock comparable across wrk's
-- threads, the "every thread is done" barrier, chunk claims, and the RESULT line of
-- fixed-request scripts.
local ffi = require("ffi")
ffi.cdef [[
  typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
  int clock_gettime(int clk, bench_timespec *ts);
  int open(const char *path, int flags, int mode);
  int close(int fd);
  int kill(int pid, int sig);
  int getpid(void);
]]
local O_WRONLY, O_CREAT, O_EXCL = 1, 64, 128 -- Linux
local SIGINT = 2
local M = {}

local ts = ffi.new("bench_timespec")
function M.now_us()
  ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) * 1000000 + math.floor(tonumber(ts.tv_nsec) / 1000)
end

-- true if this caller created state_dir/name first (an atomic claim shared by all threads)
function M.claim(state_dir, name)
  local fd = ffi.C.open(state_dir .. "/" .. name, O_WRONLY + O_CREAT + O_EXCL, 420)
  if fd < 0 then return false end
  ffi.C.close(fd)
  return true
end

-- Drops this thread's "done" marker in state_dir; once all nthreads have one, interrupts
-- wrk so that it stops and reports (a run that ends when the work does, not on a timer).
function M.thread_done(state_dir, tid, nthreads)
  local f = io.open(state_dir .. "/done-" .. tid, "w")
  if f then f:close() end
  for i = 1, nthreads do
    local g = io.open(state_dir .. "/done-" .. i, "r")
    if not g then return end
    g:close()
  end
  ffi.C.kill(ffi.C.getpid(), SIGINT)
end

-- The machine-readable line after wrk's own output (latencies in microseconds; non2xx
-- counts statuses outside 200-399).
function M.result_line(summary, latency)
  local e = summary.errors
  io.write(string.format("RESULT requests=%d duration_us=%d bytes=%d p50_us=%d p99_us=%d max_us=%d non2xx=%d sockerr=%d\n",
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(99), latency.max,
    e.status, e.connect + e.read + e.write + e.timeout))
end

return M
