-- credit.lua: wrk script for durable credits (POST /v1/accounts/{id}/credits),
-- each with its own Idempotency-Key, spread at random over the accounts
-- c-K (K < RF_BENCH_PAIRS) that bench/setup.js made.
dofile("bench/common.lua")

function request()
  counter = counter + 1
  local path = string.format("/v1/accounts/%s-c-%d/credits", prefix, math.random(0, pairs_n - 1))
  return json_request("POST", path, '{"amount_minor":1}',
                      string.format("%s-c-%d-%d", prefix, tid, counter))
end
