-- Below this header, tools/wrk-fixed-rate.lua of the reference corpus (test/support/reference-corpus.ts),
-- unchanged; its tools/README.md describes the use. bench/paired.ts and bench/proxy.ts run it.
-- Fixed-rate (open-loop schedule) load for wrk -t1:  wrk -t1 -c50 -d10s -s fixed-rate.lua URL -- RATE
-- One global schedule of send slots, RATE per second, evenly spaced. Every connection, before each
-- request, takes the next free slot and waits until it (wrk's delay() hook). wrk starts its latency
-- clock when the request is written, so latency = send -> last byte, microsecond resolution.
-- Caveat: wrk timers have 1 ms granularity, so at 3000 rps sends go out as ~3 per ms tick.
-- A request whose slot had already passed is sent at once and counted in 'late' (schedule
-- adherence; lateness is not added to its latency, i.e. no coordinated-omission correction).
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

rate = 1000
local interval_us, next_us = 1000, nil
late, late_max_us, sent = 0, 0, 0

function init(args)
  rate = tonumber(args[1] or "1000")
  interval_us = 1e6 / rate
end

function delay()
  local now = now_us()
  if next_us == nil then next_us = now + 20000 end      -- start all connections on one clean schedule
  local slot = next_us
  next_us = next_us + interval_us
  sent = sent + 1
  local d = slot - now
  if d < -1000 then
    late = late + 1
    if -d > late_max_us then late_max_us = -d end
  end
  if d <= 0 then return 0 end
  return math.floor(d / 1000 + 0.5)                       -- wrk wants whole milliseconds
end

local threads = {}
function setup(thread) table.insert(threads, thread) end

function done(summary, latency, requests)
  local l, lm, s = 0, 0, 0
  for _, t in ipairs(threads) do
    rate = t:get("rate")
    l = l + t:get("late"); s = s + t:get("sent")
    if t:get("late_max_us") > lm then lm = t:get("late_max_us") end
  end
  local e = summary.errors
  io.write(string.format(
    'FIXEDRATE {"target_rps":%d,"requests":%d,"duration_s":%.3f,"achieved_rps":%.1f,' ..
    '"p50_ms":%.3f,"p90_ms":%.3f,"p99_ms":%.3f,"p999_ms":%.3f,"max_ms":%.3f,"mean_ms":%.3f,' ..
    '"late_gt1ms":%d,"late_max_ms":%.1f,"errors":%d,"non2xx":%d}\n',
    rate, summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    latency:percentile(99.9) / 1000, latency.max / 1000, latency.mean / 1000,
    l, lm / 1000, e.connect + e.read + e.write + e.timeout, e.status))
end
