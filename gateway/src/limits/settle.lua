-- Settles admitted requests, a batch per call (every settle of one event-loop turn): releases each
-- concurrency lease and corrects the token buckets (tenant, environment, key) by the difference
-- between each reservation and the real usage (a refund, or a debt when more was used).
-- Per request, 4 KEYS and 6 ARGV:
-- KEYS: 1 concurrency set, 2 tenant hash, 3 environment hash, 4 key hash.
-- ARGV: 1 lease id ('' none), 2 tokens used (-1: unknown, the reservation stands), 3 reservation,
--       4..6 tokens per minute of tenant, environment, key (0: none).
for r = 0, #KEYS / 4 - 1 do
  local K, A = r * 4, r * 6
  if ARGV[A + 1] ~= '' then redis.call('ZREM', KEYS[K + 1], ARGV[A + 1]) end
  local used, reserve = tonumber(ARGV[A + 2]), tonumber(ARGV[A + 3])
  if used >= 0 then
    for i = 1, 3 do
      local cap = tonumber(ARGV[A + 3 + i])
      if cap > 0 then
        local delta = math.min(reserve, cap) - used
        if delta ~= 0 then
          local v = redis.call('HGET', KEYS[K + i + 1], 'kt')
          if v then
            local tokens = tonumber(v) + delta
            if tokens > cap then tokens = cap end
            redis.call('HSET', KEYS[K + i + 1], 'kt', tokens)
          end
        end
      end
    end
  end
end
return 1
