-- Hands back pre-admitted requests ("tickets", limiter.ts) a gateway did not use: for each, one
-- request to every request bucket it was taken from, its token reservation to every token bucket,
-- and its concurrency slot. A bucket never rises above its capacity.
-- Per ticket, 6 KEYS and 11 ARGV:
-- KEYS: 1 global, 2 tenant, 3 environment, 4 key, 5 key concurrency set, 6 address
-- ARGV: 1 lease id ('' none), 2 reservation, 3..5 tokens/min tenant, environment, key,
--       6..9 requests/min global, tenant, environment, key, 10 address rpm, 11 address generation rpm
-- (a limit of 0: no bucket).
local function give(key, field, n, cap)
  local v = redis.call('HGET', key, field)
  if v then
    local x = tonumber(v) + n
    if x > cap then x = cap end
    redis.call('HSET', key, field, x)
  end
end
for r = 0, #KEYS / 6 - 1 do
  local K, A = r * 6, r * 11
  if ARGV[A + 1] ~= '' then redis.call('ZREM', KEYS[K + 5], ARGV[A + 1]) end
  local reserve = tonumber(ARGV[A + 2])
  if reserve > 0 then
    for i = 1, 3 do
      local cap = tonumber(ARGV[A + 2 + i])
      if cap > 0 then give(KEYS[K + 1 + i], 'kt', math.min(reserve, cap), cap) end
    end
  end
  for i = 1, 4 do
    local cap = tonumber(ARGV[A + 5 + i])
    if cap > 0 then give(KEYS[K + i], 't', 1, cap) end
  end
  local acap, agcap = tonumber(ARGV[A + 10]), tonumber(ARGV[A + 11])
  if acap > 0 then give(KEYS[K + 6], 't', 1, acap) end
  if agcap > 0 then give(KEYS[K + 6], 'gt', 1, agcap) end
end
return 1
