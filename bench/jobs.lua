-- jobs.lua: wrk script for the job queue's whole cycle, seed 001's queue
-- worker: enqueue (POST /v1/jobs), claim up to CLAIM_MAX at once
-- (POST /v1/queues/{q}/claim, each job with a fencing token) and complete
-- each claimed job with its token (POST /v1/jobs/{id}/complete). Each wrk
-- thread is a producer and a worker on one queue shared by all threads: it
-- completes what it claimed first, claims when it has enqueued CLAIM_MAX
-- since its last claim, and enqueues otherwise. The RESULT line's rps is
-- jobs completed per second (every completed job was enqueued and claimed
-- in the run); requests, p50 and p99 are over every request.
dofile("bench/common.lua")

local CLAIM_MAX = 16
local todo = {}      -- claimed jobs to complete: {id, token}
local owed = 0       -- enqueued since the last claim
completed = 0

function request()
  local j = table.remove(todo)
  if j then
    return json_request("POST", "/v1/jobs/" .. j[1] .. "/complete",
                        '{"token":' .. j[2] .. ',"result":{"ok":true}}')
  end
  if owed >= CLAIM_MAX then
    owed = owed - CLAIM_MAX
    return json_request("POST", "/v1/queues/" .. prefix .. "/claim", string.format(
      '{"worker_id":"%s-w%d","lease_ms":60000,"max_jobs":%d}', prefix, tid, CLAIM_MAX))
  end
  owed = owed + 1
  counter = counter + 1
  return json_request("POST", "/v1/jobs", string.format(
    '{"queue":"%s","kind":"bench","payload":{"n":%d}}', prefix, counter))
end

-- A claim's answer lists jobs, each with one "id" and one "token" (the
-- payload {"n":..} has neither), so the i-th id goes with the i-th token.
function response(status, headers, body)
  if status ~= 200 then return end
  if body:sub(1, 8) == '{"data":' then
    local ids, tokens = {}, {}
    for id in body:gmatch('"id":"([^"]+)"') do ids[#ids + 1] = id end
    for t in body:gmatch('"token":(%d+)') do tokens[#tokens + 1] = t end
    for i = 1, math.min(#ids, #tokens) do todo[#todo + 1] = {ids[i], tokens[i]} end
  elseif body:find('"status":"completed"', 1, true) then
    completed = completed + 1
  end
end

local all = {}
function setup(thread)
  thread:set("tid", #all + 1)
  table.insert(all, thread)
end

function done(summary, latency, requests)
  local secs = summary.duration / 1e6
  local jobs = 0
  for _, t in ipairs(all) do jobs = jobs + (t:get("completed") or 0) end
  io.write(string.format(
    "RESULT requests=%d rps=%.0f p50_ms=%.2f p99_ms=%.2f non2xx=%d socket_errors=%d jobs=%d\n",
    summary.requests, jobs / secs,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout, jobs))
end
