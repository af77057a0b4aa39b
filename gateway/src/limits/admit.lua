-- Admission in one atomic step, on Redis time. Token buckets (one hash per layer: t = tokens,
-- ts = ms), a concurrency lease set per key (score = expiry), graduated response per offender.
--
-- KEYS: 1 key block, 2 address block, 3 key violations, 4 address violations,
--       5 concurrency set, 6 token bucket, 7.. request buckets
-- ARGV: 1 request cost, 2 concurrency limit (0: none), 3 lease id, 4 lease ttl ms,
--       5 tokens per minute (0: none), 6 token reserve, 7 violation window ms, 8 delay after,
--       9 block after, 10 max delay ms, 11 block ms, 12 has key (1/0), 13 force violation (1/0),
--       14.. capacity per request bucket (requests per minute), in KEYS order from 7
-- Returns: { admitted, refused layer (0 none, -1 blocked, -2 concurrency, -3 tokens, i = bucket i),
--            retry after ms, limit, remaining, reset ms, delay ms, newly blocked (1/0) }
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local cost = tonumber(ARGV[1])
local hasKey = ARGV[12] == '1'

local function level(key, cap)
  local v = redis.call('HMGET', key, 't', 'ts')
  local tokens, ts = tonumber(v[1]), tonumber(v[2])
  if tokens == nil then return cap end
  if now > ts then tokens = tokens + (now - ts) * cap / 60000 end
  if tokens > cap then tokens = cap end
  return tokens
end

local function store(key, tokens)
  redis.call('HSET', key, 't', tokens, 'ts', now)
  redis.call('PEXPIRE', key, 120000)
end

-- The tightest request bucket names the X-RateLimit-* headers.
local function headers(levels, spent)
  local best, bestRemaining = 0, nil
  for i = 1, #levels do
    local rem = levels[i] - spent
    if bestRemaining == nil or rem < bestRemaining then best, bestRemaining = i, rem end
  end
  if best == 0 then return 0, 0, 0 end
  local cap = tonumber(ARGV[13 + best])
  local rem = math.max(0, math.floor(bestRemaining))
  return cap, rem, math.ceil((cap - math.max(0, bestRemaining)) * 60000 / cap)
end

local function violate(blockedLayer, retryMs, lim, rem, reset)
  local worst = 0
  local newlyBlocked = 0
  local offenders = {}
  if hasKey then offenders[#offenders + 1] = { KEYS[3], KEYS[1] } end
  offenders[#offenders + 1] = { KEYS[4], KEYS[2] }
  for _, o in ipairs(offenders) do
    local n = redis.call('INCR', o[1])
    if n == 1 then redis.call('PEXPIRE', o[1], tonumber(ARGV[7])) end
    if n > worst then worst = n end
    if n >= tonumber(ARGV[9]) then
      redis.call('SET', o[2], '1', 'PX', tonumber(ARGV[11]))
      redis.call('DEL', o[1])
      newlyBlocked = 1
    end
  end
  local delay = 0
  if worst > tonumber(ARGV[8]) then
    delay = math.min(tonumber(ARGV[10]), 50 * 2 ^ math.min(20, worst - tonumber(ARGV[8]) - 1))
  end
  return { 0, blockedLayer, math.ceil(retryMs), lim, rem, math.ceil(reset), math.floor(delay), newlyBlocked }
end

-- Blocked offenders are refused without spending anything.
for _, b in ipairs(hasKey and { KEYS[1], KEYS[2] } or { KEYS[2] }) do
  local ttl = redis.call('PTTL', b)
  if ttl > 0 then return { 0, -1, ttl, 0, 0, 0, 0, 0 } end
end

local levels = {}
for i = 7, #KEYS do
  local cap = tonumber(ARGV[7 + i])
  local lv = level(KEYS[i], cap)
  levels[#levels + 1] = lv
  if lv < cost then
    return violate(i - 6, (cost - lv) * 60000 / cap, cap, math.max(0, math.floor(lv)), (cap - lv) * 60000 / cap)
  end
end
local lim, rem, reset = headers(levels, cost)
if ARGV[13] == '1' then
  for i = 7, #KEYS do store(KEYS[i], levels[i - 6] - cost) end
  return violate(0, 0, lim, rem, reset)
end

local tpm, reserve = tonumber(ARGV[5]), tonumber(ARGV[6])
local tokenLevel = 0
if tpm > 0 then
  if reserve > tpm then reserve = tpm end
  tokenLevel = level(KEYS[6], tpm)
  if tokenLevel < reserve then return violate(-3, (reserve - tokenLevel) * 60000 / tpm, lim, rem, reset) end
end

local climit = tonumber(ARGV[2])
if climit > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', now)
  if redis.call('ZCARD', KEYS[5]) >= climit then return violate(-2, 1000, lim, rem, reset) end
  redis.call('ZADD', KEYS[5], now + tonumber(ARGV[4]), ARGV[3])
  redis.call('PEXPIRE', KEYS[5], tonumber(ARGV[4]) * 2)
end
if tpm > 0 then store(KEYS[6], tokenLevel - reserve) end
for i = 7, #KEYS do store(KEYS[i], levels[i - 6] - cost) end
return { 1, 0, 0, lim, rem, reset, 0, 0 }
