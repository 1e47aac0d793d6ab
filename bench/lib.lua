-- Shared by the wrk scripts of bench/*/ (loaded per Lua state with
-- dofile(<dir of the script> .. "/../lib.lua")): a monotonic clock comparable across wrk's
-- threads, the "every thread is done" barrier, chunk claims, the RESULT line of
-- fixed-request scripts, and the answer counting of scripts that check every answer.
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

-- wrk's socket errors of a run (connect, read, write and timeout) in one number.
function M.sockerr(summary)
  local e = summary.errors
  return e.connect + e.read + e.write + e.timeout
end

-- The machine-readable line after wrk's own output (latencies in microseconds; non2xx
-- counts statuses outside 200-399).
function M.result_line(summary, latency)
  io.write(string.format("RESULT requests=%d duration_us=%d bytes=%d p50_us=%d p99_us=%d max_us=%d non2xx=%d sockerr=%d\n",
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(99), latency.max,
    summary.errors.status, M.sockerr(summary)))
end

-- For response(): counts one answer in the thread's globals (globals, so that done() can
-- read them with thread:get(); the script's init() sets them to 0 and ""): answered; the
-- counter named ok_name when ok, else failed and, for the first failure, first_error
-- ("STATUS:first 120 bytes of the body", blanks as _); t_last, the time of the answer.
function M.count_answer(status, body, ok, ok_name)
  answered = answered + 1
  if ok then
    _G[ok_name] = _G[ok_name] + 1
  else
    failed = failed + 1
    if first_error == "" then
      first_error = tostring(status) .. ":" .. (body or ""):sub(1, 120):gsub("%s", "_")
    end
  end
  t_last = M.now_us()
end

-- For done(): over all threads, the sums of the counters named in names (a table name → sum),
-- the earliest t_first and latest t_last (nil when no thread has one), and the first
-- thread's first_error ("-" when no thread had a failure).
function M.gather(threads, names)
  local sums, first, last, err = {}, nil, nil, ""
  for _, n in ipairs(names) do sums[n] = 0 end
  for _, t in ipairs(threads) do
    for _, n in ipairs(names) do sums[n] = sums[n] + (t:get(n) or 0) end
    local a, b = t:get("t_first"), t:get("t_last")
    if a and (not first or a < first) then first = a end
    if b and (not last or b > last) then last = b end
    local e = t:get("first_error")
    if err == "" and e and e ~= "" then err = e end
  end
  return sums, first, last, err == "" and "-" or err
end

return M
