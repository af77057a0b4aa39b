-- Extends live concurrency leases of long requests (a gateway that dies stops refreshing, and its
-- leases expire). KEYS: concurrency sets; ARGV: 1 ttl ms, then one lease id per key.
local t = redis.call('TIME')
local expiry = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[1])
for i = 1, #KEYS do redis.call('ZADD', KEYS[i], 'XX', expiry, ARGV[i + 1]) end
return #KEYS
