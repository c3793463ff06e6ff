-- grant.lua: wrk script for entitlement grants. Every request grants a new
-- (user, key), so each one is a real write (an insert), not a no-op re-grant.
-- The API key comes from RF_BENCH_KEY; RF_BENCH_PREFIX keeps runs apart.
local threads = {}
local counter = 0

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  key = os.getenv("RF_BENCH_KEY")
  prefix = os.getenv("RF_BENCH_PREFIX") or "bench"
end

function request()
  counter = counter + 1
  local path = string.format("/v1/users/%s-%d-%d/entitlements/pro", prefix, tid, counter)
  return wrk.format("PUT", path, {
    ["Authorization"] = "Bearer " .. key,
    ["Content-Type"] = "application/json",
  }, '{"source":"bench"}')
end

function done(summary, latency, requests)
  local secs = summary.duration / 1e6
  io.write(string.format(
    "RESULT requests=%d rps=%.0f p50_ms=%.2f p99_ms=%.2f non2xx=%d socket_errors=%d\n",
    summary.requests, summary.requests / secs,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
