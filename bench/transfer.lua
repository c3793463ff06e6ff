-- transfer.lua: wrk script for ledger transfers (POST /v1/transfers, each with
-- its own Idempotency-Key). RF_BENCH_MODE=distinct moves 1 unit from src-K to
-- dst-K for a random K (no shared rows); RF_BENCH_MODE=hot debits one
-- account, "hot", for every request (every transfer contends on one row).
-- Accounts are made and funded by bench/setup.js before the run.
dofile("bench/common.lua")

function request()
  counter = counter + 1
  local k = math.random(0, pairs_n - 1)
  local src = (mode == "hot") and (prefix .. "-hot") or string.format("%s-src-%d", prefix, k)
  local body = string.format(
    '{"debit_account":"%s","credit_account":"%s-dst-%d","amount_minor":1,"currency":"USD"}',
    src, prefix, k)
  return json_request("POST", "/v1/transfers", body,
                      string.format("%s-%s-%d-%d", prefix, mode, tid, counter))
end
