-- grant.lua: wrk script for entitlement grants. Every request grants a new
-- (user, key), so each one is a real write (an insert), not a no-op re-grant.
dofile("bench/common.lua")

function request()
  counter = counter + 1
  local path = string.format("/v1/users/%s-%d-%d/entitlements/pro", prefix, tid, counter)
  return json_request("PUT", path, '{"source":"bench"}')
end
