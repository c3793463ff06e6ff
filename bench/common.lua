-- common.lua: what every wrk script of bench/ shares (loaded with dofile from
-- the repository root, where bench/run.sh runs wrk): the thread ids, the
-- environment (RF_BENCH_KEY: the Bearer token; RF_BENCH_PREFIX keeps runs
-- apart; RF_BENCH_PAIRS: how many accounts of each kind bench/setup.js made)
-- and the one RESULT line bench/run.sh parses.
local threads = {}

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  key = os.getenv("RF_BENCH_KEY")
  prefix = os.getenv("RF_BENCH_PREFIX") or "bench"
  mode = os.getenv("RF_BENCH_MODE") or "distinct"
  pairs_n = tonumber(os.getenv("RF_BENCH_PAIRS") or "256")
  counter = 0
  math.randomseed(tid * 7919 + os.time())
end

-- A write with a JSON body, the Bearer token and, when given, an Idempotency-Key.
function json_request(method, path, body, idem)
  local headers = {
    ["Authorization"] = "Bearer " .. key,
    ["Content-Type"] = "application/json",
  }
  if idem then headers["Idempotency-Key"] = idem end
  return wrk.format(method, path, headers, body)
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
