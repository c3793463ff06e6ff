-- transfer.lua: wrk script for ledger transfers (POST /v1/transfers, each with
-- its own Idempotency-Key). RF_BENCH_MODE=distinct moves 1 unit from src-K to
-- dst-K for a random K (no shared rows); RF_BENCH_MODE=hot debits one
-- account, "hot", for every request (every transfer contends on one row).
-- Accounts are made and funded by bench/run.sh before the run.
local threads = {}
local counter = 0

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  key = os.getenv("RF_BENCH_KEY")
  prefix = os.getenv("RF_BENCH_PREFIX") or "bench"
  mode = os.getenv("RF_BENCH_MODE") or "distinct"
  pairs_n = tonumber(os.getenv("RF_BENCH_PAIRS") or "256")
  math.randomseed(tid * 7919 + os.time())
end

function request()
  counter = counter + 1
  local k = math.random(0, pairs_n - 1)
  local src = (mode == "hot") and (prefix .. "-hot") or string.format("%s-src-%d", prefix, k)
  local body = string.format(
    '{"debit_account":"%s","credit_account":"%s-dst-%d","amount_minor":1,"currency":"USD"}',
    src, prefix, k)
  return wrk.format("POST", "/v1/transfers", {
    ["Authorization"] = "Bearer " .. key,
    ["Content-Type"] = "application/json",
    ["Idempotency-Key"] = string.format("%s-%s-%d-%d", prefix, mode, tid, counter),
  }, body)
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
