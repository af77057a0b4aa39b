-- Settles an admitted request in one step: releases its concurrency lease and corrects the token
-- buckets (tenant, environment, key) by the difference between each reservation and the real
-- usage (a refund, or a debt when more was used).
-- KEYS: 1 concurrency set, 2 tenant hash, 3 environment hash, 4 key hash.
-- ARGV: 1 lease id ('' none), 2 tokens used (-1: unknown, the reservation stands), 3 reservation,
--       4..6 tokens per minute of tenant, environment, key (0: none).
if ARGV[1] ~= '' then redis.call('ZREM', KEYS[1], ARGV[1]) end
local used, reserve = tonumber(ARGV[2]), tonumber(ARGV[3])
if used < 0 then return 1 end
for i = 1, 3 do
  local cap = tonumber(ARGV[3 + i])
  if cap > 0 then
    local delta = math.min(reserve, cap) - used
    if delta ~= 0 then
      local v = redis.call('HGET', KEYS[i + 1], 'kt')
      if v then
        local tokens = tonumber(v) + delta
        if tokens > cap then tokens = cap end
        redis.call('HSET', KEYS[i + 1], 'kt', tokens)
      end
    end
  end
end
return 1
