-- wrk script for bench/resources/run.sh: concurrent source creates (POST), each with a
-- new slug, against manifold or json-server.
--
-- Environment (read with os.getenv; wrk.format's headers table replaces wrk's -H headers,
-- so Authorization is set here):
--   MANIFOLD_TOKEN   bearer token (empty: no Authorization header)
--   BENCH_PATH       collection path (default /v1beta/workspaces/myworkspace/sources)
--   BENCH_PREFIX     slug prefix (default src)
--   BENCH_TOTAL      creates to make in all; 0 = as many as fit in wrk's -d duration
--   BENCH_THREADS    wrk's -t
--   BENCH_STATE_DIR  an empty directory, needed with BENCH_TOTAL (see below)
--
-- With BENCH_TOTAL the slugs are PREFIX-0000000 .. PREFIX-(TOTAL-1), each sent once: wrk's
-- threads claim them in chunks of CHUNK by creating claim files in BENCH_STATE_DIR with
-- O_EXCL, so no thread runs out of work while another still has plenty. A thread whose
-- claims are exhausted and whose creates are all answered parks its connections, drops a
-- done marker there, and the last one to do so sends SIGINT to wrk, which then stops at
-- once and reports. Without BENCH_TOTAL thread t sends PREFIX-t-0000000, PREFIX-t-0000001…
--
-- Prints after wrk's own output:
--   RESULT created=N failed=N elapsed_us=N requests=N duration_us=N p50_us=N p99_us=N
--          max_us=N non2xx=N sockerr=N first_error=STATUS:BODY
-- where elapsed_us runs from the first request sent to the last create answered (over all
-- threads; without BENCH_TOTAL it is wrk's duration).
local lib = dofile(((debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$")) or ".") .. "/../lib.lua")
local CHUNK = 64
local PARK_MS = 3600 * 1000

local now_us = lib.now_us

local token = os.getenv("MANIFOLD_TOKEN") or ""
local path = os.getenv("BENCH_PATH") or "/v1beta/workspaces/myworkspace/sources"
local prefix = os.getenv("BENCH_PREFIX") or "src"
local total = tonumber(os.getenv("BENCH_TOTAL") or "0") or 0
local nthreads = tonumber(os.getenv("BENCH_THREADS") or "1") or 1
local state_dir = os.getenv("BENCH_STATE_DIR") or ""
local collection = path:gsub("^/v1beta/", "")
if total > 0 and state_dir == "" then error("create.lua: BENCH_TOTAL needs BENCH_STATE_DIR") end

-- main state: remember the threads, give each an index
local threads = {}
setup = function(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end

-- Thread state. Counters are globals so that done() can read them with thread:get().
local queue, qhead, qtail -- slugs handed out by delay(), to be sent by request()
local next_n, chunk_end, chunk_cursor, exhausted

local function claim(k) -- true if this thread got chunk k
  return lib.claim(state_dir, "claim-" .. k)
end

local function next_slug() -- nil when there is none left for this thread
  if total <= 0 then
    local s = string.format("%s-%d-%07d", prefix, tid, next_n)
    next_n = next_n + 1
    return s
  end
  if next_n >= chunk_end and not exhausted then
    local chunks = math.ceil(total / CHUNK)
    while chunk_cursor < chunks and not claim(chunk_cursor) do chunk_cursor = chunk_cursor + 1 end
    if chunk_cursor >= chunks then
      exhausted = true
    else
      next_n = chunk_cursor * CHUNK
      chunk_end = math.min(next_n + CHUNK, total)
      chunk_cursor = chunk_cursor + 1
    end
  end
  if next_n >= chunk_end then return nil end
  local s = string.format("%s-%07d", prefix, next_n)
  next_n = next_n + 1
  return s
end

local function maybe_finish()
  if total <= 0 or finished or not exhausted or qhead ~= qtail or answered < sent then return end
  finished = true
  lib.thread_done(state_dir, tid, nthreads)
end

init = function(args)
  headers = { ["Content-Type"] = "application/json" }
  if token ~= "" then headers["Authorization"] = "Bearer " .. token end
  sent, answered, created, failed = 0, 0, 0, 0
  first_error, finished = "", false
  queue, qhead, qtail = {}, 0, 0
  next_n, chunk_end, chunk_cursor, exhausted = 0, 0, 0, false
end

local function post(slug)
  local body = '{"source":{"name":"' .. collection .. '/' .. slug ..
               '","catalog_name":"catalog/sources/javascript"}}'
  return wrk.format("POST", path, headers, body)
end

-- wrk calls delay() before every request() that it sends (this script has a delay()), and
-- calls request() once more on its first thread before the run only to check the request
-- (script_verify_request). So delay() takes the next slug and request() sends it; a
-- request() with no slug waiting is that check, and consumes none.
delay = function()
  local slug = next_slug()
  if not slug then
    maybe_finish()
    return PARK_MS
  end
  queue[qtail] = slug
  qtail = qtail + 1
  return 0
end

request = function()
  if qhead == qtail then return post(prefix .. "-check") end -- wrk's check, never sent
  local slug = queue[qhead]
  queue[qhead] = nil
  qhead = qhead + 1
  if not t_first then t_first = now_us() end
  sent = sent + 1
  return post(slug)
end

response = function(status, hdrs, body)
  lib.count_answer(status, body, status == 200 or status == 201, "created")
  maybe_finish()
end

done = function(summary, latency, requests)
  local n, first, last, err = lib.gather(threads, { "created", "failed" })
  local elapsed = summary.duration
  if total > 0 and first and last then elapsed = last - first end
  io.write(string.format(
    "RESULT created=%d failed=%d elapsed_us=%d requests=%d duration_us=%d p50_us=%d p99_us=%d max_us=%d non2xx=%d sockerr=%d first_error=%s\n",
    n.created, n.failed, elapsed, summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency.max, summary.errors.status, lib.sockerr(summary), err))
end
