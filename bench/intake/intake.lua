-- wrk script for bench/intake/run.sh: Tracking API POSTs with a write key (HTTP Basic) and
-- a unique messageId on every event (the server deduplicates on messageId, §9: repeated
-- ids would be dropped, not stored).
--
-- Environment:
--   BENCH_MODE       batch (POST /v1/batch, BENCH_EVENTS events per request) or track
--                    (POST /v1/track, one event)
--   BENCH_EVENTS     events per batch (default 20)
--   BENCH_WRITE_KEY  the source's write key
--   BENCH_RUN        a prefix unique to this wrk run (messageIds are RUN-thread-n-i)
--   BENCH_SECONDS    send for this many seconds, then stop sending, wait for every answer,
--                    and stop wrk (SIGINT): every request sent is answered and counted, so
--                    the 200s can be checked against what the server stored. Run wrk with
--                    -d a little longer as a backstop.
--   BENCH_THREADS    wrk's -t
--   BENCH_STATE_DIR  an empty directory (threads drop a marker there when done)
--
-- Prints after wrk's own output:
--   RESULT ok=N failed=N sent=N elapsed_us=N requests=N p50_us=N p99_us=N max_us=N
--          non2xx=N sockerr=N body_bytes=N first_error=STATUS:BODY
local lib = dofile(((debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$")) or ".") .. "/../lib.lua")
local PARK_MS = 3600 * 1000
local now_us = lib.now_us

local mode = os.getenv("BENCH_MODE") or "batch"
local nevents = tonumber(os.getenv("BENCH_EVENTS") or "20") or 20
if mode == "track" then nevents = 1 end
local key = os.getenv("BENCH_WRITE_KEY") or error("intake.lua: BENCH_WRITE_KEY is not set")
local run = os.getenv("BENCH_RUN") or tostring(os.time())
local seconds = tonumber(os.getenv("BENCH_SECONDS") or "10") or 10
local nthreads = tonumber(os.getenv("BENCH_THREADS") or "1") or 1
local state_dir = os.getenv("BENCH_STATE_DIR") or error("intake.lua: BENCH_STATE_DIR is not set")

-- base64 (for the Basic header: base64("<key>:"))
local b64chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local function b64(s)
  return ((s:gsub(".", function(x)
    local r, b = "", x:byte()
    for i = 8, 1, -1 do r = r .. (b % 2 ^ i - b % 2 ^ (i - 1) > 0 and "1" or "0") end
    return r
  end) .. "0000"):gsub("%d%d%d?%d?%d?%d?", function(x)
    if #x < 6 then return "" end
    local c = 0
    for i = 1, 6 do c = c + (x:sub(i, i) == "1" and 2 ^ (6 - i) or 0) end
    return b64chars:sub(c + 1, c + 1)
  end) .. ({ "", "==", "=" })[#s % 3 + 1])
end

-- A realistic e-commerce track event of about 1 KB (Segment's "Order Completed" spec
-- event, as a server-side library would send it), split around its messageId.
local EV_HEAD = '{"type":"track","event":"Order Completed","userId":"user-%d","anonymousId":"5f2d9c3e-8b1a-4f7e-9a61-2c0b7d4e%04d","messageId":"'
local EV_TAIL = '","timestamp":"2026-12-05T09:00:00.000Z","properties":{"checkout_id":"fksdjfsdjfisjf9sdfjsd9f",'
  .. '"order_id":"50314b8e9bcf000000000000","affiliation":"Google Store","total":27.50,"subtotal":22.50,'
  .. '"revenue":25.00,"shipping":3,"tax":2,"discount":2.5,"coupon":"hasbros","currency":"USD",'
  .. '"products":[{"product_id":"507f1f77bcf86cd799439011","sku":"45790-32","name":"Monopoly: 3rd Edition",'
  .. '"price":19,"quantity":1,"category":"Games","url":"https://www.example.com/product/path",'
  .. '"image_url":"https://www.example.com/product/path.jpg"},{"product_id":"505bd76785ebb509fc183733",'
  .. '"sku":"46493-32","name":"Uno Card Game","price":3,"quantity":2,"category":"Games"}]},'
  .. '"context":{"ip":"203.0.113.7","locale":"en-US","timezone":"Europe/Berlin",'
  .. '"library":{"name":"analytics-python","version":"2.3.2"},'
  .. '"userAgent":"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15",'
  .. '"page":{"path":"/checkout/complete","referrer":"https://www.example.com/cart","title":"Thank you",'
  .. '"url":"https://www.example.com/checkout/complete"}},"integrations":{}}'

local threads = {}
setup = function(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end

init = function(args)
  headers = { ["Content-Type"] = "application/json", ["Authorization"] = "Basic " .. b64(key .. ":") }
  path = (mode == "track") and "/v1/track" or "/v1/batch"
  sent, answered, ok, failed, body_bytes = 0, 0, 0, 0, 0
  first_error, finished, stopping = "", false, false
  seq = 0
  t_end = nil
end

local function event(n, i)
  return string.format(EV_HEAD, n % 100000, i % 10000) .. run .. "-" .. tid .. "-" .. n .. "-" .. i .. EV_TAIL
end

local function build(n)
  if mode == "track" then return event(n, 0) end
  local parts = {}
  for i = 1, nevents do parts[i] = event(n, i) end
  return '{"batch":[' .. table.concat(parts, ",") .. '],"sentAt":"2026-12-05T09:00:00.100Z"}'
end

local function maybe_finish()
  if finished or not stopping or answered < sent then return end
  finished = true
  lib.thread_done(state_dir, tid, nthreads)
end

-- wrk calls delay() before each request() it sends (and request() once more, before the
-- run, only to check it: that one has no pending slot and is never sent).
local pending = 0
delay = function()
  local t = now_us()
  if not t_end then t_end = t + seconds * 1000000; t_first = t end
  if t >= t_end then
    stopping = true
    maybe_finish()
    return PARK_MS
  end
  pending = pending + 1
  return 0
end

request = function()
  if pending == 0 then return wrk.format("POST", path, headers, build(-1)) end -- wrk's check
  pending = pending - 1
  seq = seq + 1
  sent = sent + 1
  local body = build(seq)
  body_bytes = body_bytes + #body
  return wrk.format("POST", path, headers, body)
end

response = function(status, hdrs, body)
  lib.count_answer(status, body, status == 200, "ok")
  maybe_finish()
end

done = function(summary, latency, requests)
  local n, first, last, err = lib.gather(threads, { "ok", "failed", "sent", "body_bytes" })
  local elapsed = summary.duration
  if first and last then elapsed = last - first end
  io.write(string.format(
    "RESULT ok=%d failed=%d sent=%d elapsed_us=%d requests=%d p50_us=%d p99_us=%d max_us=%d non2xx=%d sockerr=%d body_bytes=%d first_error=%s\n",
    n.ok, n.failed, n.sent, elapsed, summary.requests, latency:percentile(50), latency:percentile(99), latency.max,
    summary.errors.status, lib.sockerr(summary), n.body_bytes, err))
end
