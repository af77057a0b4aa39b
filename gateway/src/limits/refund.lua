-- Hands back the requests of pre-admitted requests ("tickets", limiter.ts) a gateway did not use:
-- one request to every request bucket each was taken from (a bucket never rises above its
-- capacity). Their concurrency slots and reserved tokens go back through settle.lua.
-- Per ticket, 5 KEYS and 6 ARGV:
-- KEYS: 1 global, 2 tenant, 3 environment, 4 key, 5 address
-- ARGV: 1..4 requests/min global, tenant, environment, key, 5 address rpm, 6 address generation rpm
-- (a limit of 0: no bucket).
local function give(key, field, cap)
  local v = redis.call('HGET', key, field)
  if v then
    local x = tonumber(v) + 1
    if x > cap then x = cap end
    redis.call('HSET', key, field, x)
  end
end
for r = 0, #KEYS / 5 - 1 do
  local K, A = r * 5, r * 6
  for i = 1, 4 do
    local cap = tonumber(ARGV[A + i])
    if cap > 0 then give(KEYS[K + i], 't', cap) end
  end
  local acap, agcap = tonumber(ARGV[A + 5]), tonumber(ARGV[A + 6])
  if acap > 0 then give(KEYS[K + 5], 't', acap) end
  if agcap > 0 then give(KEYS[K + 5], 'gt', agcap) end
end
return 1
