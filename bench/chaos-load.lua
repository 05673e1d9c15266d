-- Fixed-rate load for the chaos benchmark (bench/chaos.ts):  wrk -t1 -c16 -d20s -s chaos-load.lua URL -- RATE
-- The schedule is bench/wrk-fixed-rate.lua's: one global schedule of send slots, RATE per second, evenly spaced;
-- every connection takes the next free slot before each request and waits for it (wrk's delay()
-- hook). Added for the faults: every answer is checked, and each failure is written down with
-- when it happened (ms since the first send), so a failure can be told apart from the fault that
-- caused it. A failure is a status other than 2xx, or a 200 page that says a backend was
-- "currently unavailable" (Bookinfo's productpage degrades instead of failing). Connection errors
-- and timeouts are wrk's own counters (no response() call is made for them).
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } wrk_timespec;
int clock_gettime(int clk_id, wrk_timespec *tp);
]]
local ts = ffi.new("wrk_timespec")
local function now_us()
  ffi.C.clock_gettime(1, ts)   -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) * 1e6 + tonumber(ts.tv_nsec) / 1e3
end

rate = 50
local interval_us, next_us, start_us = 20000, nil, nil
late, sent = 0, 0
non2xx, degraded, ok = 0, 0, 0
failures = ""          -- "t_ms:what;" per failure, at most 400 kept
local kept = 0

function init(args)
  rate = tonumber(args[1] or "50")
  interval_us = 1e6 / rate
end

function delay()
  local now = now_us()
  if next_us == nil then next_us = now + 20000; start_us = next_us end
  local slot = next_us
  next_us = next_us + interval_us
  sent = sent + 1
  local d = slot - now
  if d < -1000 then late = late + 1 end
  if d <= 0 then return 0 end
  return math.floor(d / 1000 + 0.5)
end

local function note(what)
  if kept < 400 then
    failures = failures .. string.format("%d:%s;", (now_us() - (start_us or now_us())) / 1000, what)
    kept = kept + 1
  end
end

function response(status, headers, body)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
    note(tostring(status) .. (headers["x-sinew-response-flags"] and ("/" .. headers["x-sinew-response-flags"]) or ""))
  elseif body and string.find(body, "currently unavailable", 1, true) then
    degraded = degraded + 1
    local which = string.match(body, "product (%a+) are currently unavailable") or "?"
    note("degraded/" .. which)
  else
    ok = ok + 1
  end
end

local threads = {}
function setup(thread) table.insert(threads, thread) end

function done(summary, latency, requests)
  local t = threads[1]
  local e = summary.errors
  io.write(string.format(
    'CHAOSLOAD {"target_rps":%d,"requests":%d,"duration_s":%.3f,"ok":%d,"non2xx":%d,"degraded":%d,' ..
    '"connect_errors":%d,"read_errors":%d,"write_errors":%d,"timeouts":%d,"late":%d,' ..
    '"p50_ms":%.3f,"p99_ms":%.3f,"max_ms":%.3f,"failures":"%s"}\n',
    t:get("rate"), summary.requests, summary.duration / 1e6, t:get("ok"), t:get("non2xx"), t:get("degraded"),
    e.connect, e.read, e.write, e.timeout, t:get("late"),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000, t:get("failures")))
end
