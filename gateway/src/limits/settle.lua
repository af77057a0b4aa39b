-- Settles admitted requests, a batch per call (every settle of one event-loop turn, grouped per API
-- key): releases the concurrency leases and corrects the token buckets (tenant, environment, key)
-- by the summed difference between the reservations and the real usage (a refund, or a debt when
-- more was used). A bucket never rises above its capacity.
-- Per key, 4 KEYS and 7 + n ARGV:
-- KEYS: 1 concurrency set, 2 tenant hash, 3 environment hash, 4 key hash.
-- ARGV: 1 n lease ids, 2..4 token correction for tenant, environment, key, 5..7 tokens per minute of
--       tenant, environment, key (0: none), 8..7+n the lease ids.
local a = 1
for r = 0, #KEYS / 4 - 1 do
  local K = r * 4
  local n = tonumber(ARGV[a])
  for i = 1, 3 do
    local delta, cap = tonumber(ARGV[a + i]), tonumber(ARGV[a + 3 + i])
    if cap > 0 and delta ~= 0 then
      local v = redis.call('HGET', KEYS[K + i + 1], 'kt')
      if v then
        local tokens = tonumber(v) + delta
        if tokens > cap then tokens = cap end
        redis.call('HSET', KEYS[K + i + 1], 'kt', tokens)
      end
    end
  end
  if n > 0 then redis.call('ZREM', KEYS[K + 1], unpack(ARGV, a + 7, a + 6 + n)) end
  a = a + 7 + n
end
return 1
