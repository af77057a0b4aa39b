-- Settles an admitted request in one step: releases its concurrency lease and corrects the token
-- bucket by the difference between the reservation and the real usage (refund or debt).
-- KEYS: 1 concurrency set, 2 token bucket. ARGV: 1 lease id ('' none), 2 token delta, 3 tokens per minute.
if ARGV[1] ~= '' then redis.call('ZREM', KEYS[1], ARGV[1]) end
local delta, cap = tonumber(ARGV[2]), tonumber(ARGV[3])
if delta ~= 0 and cap > 0 then
  local v = redis.call('HGET', KEYS[2], 't')
  if v then
    local tokens = tonumber(v) + delta
    if tokens > cap then tokens = cap end
    redis.call('HSET', KEYS[2], 't', tokens)
  end
end
return 1
