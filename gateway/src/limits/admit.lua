-- Admission in one atomic step, on Redis time, for a batch of requests (the gateway sends every
-- request that arrived in one event-loop turn in one call; each is decided in order as if alone). One hash per layer with short field names, read
-- with one HMGET each and written with one HSET each; the expiry is refreshed only when it runs
-- low (field x), so an admitted request costs about a dozen commands and no table building.
-- Every key carries the hash tag {gw}: one slot, so the script runs unchanged on Redis Cluster.
--
-- Per request, 6 KEYS and 20 ARGV (KEYS[6i+1..6i+6], ARGV[20i+1..20i+20]):
-- KEYS: 1 global, 2 tenant, 3 environment, 4 key, 5 key concurrency set (zset, score = expiry), 6 address
-- Fields: t/ts request bucket (tokens, last ms); kt/kts token bucket; gt/gts the address's
--   generation bucket; b blocked until (ms); v/vw violations and the end of their window; x the
--   expiry last set; cx the concurrency set's expiry (kept in the key hash).
-- ARGV: 1 kind (1 keyed, 0 keyless; -n keyed pre-admission of up to n requests at once: as many as
--   every layer allows are admitted, leases "<id>.1".."<id>.m", and a refusal counts as no
--   violation), 2 forced violation (1/0), 3..6 requests/min global, tenant, environment, key,
--   7 address rpm, 8 address generation rpm (0: not a generation request), 9..11 tokens/min tenant,
--   environment, key, 12 token reservation, 13 concurrency limit, 14 lease id, 15 lease ttl ms,
--   16 violation window ms, 17 delay after, 18 block after, 19 max delay ms, 20 block ms
-- A limit of 0 disables that bucket.
-- Returns one reply per request: { admitted (how many: 0/1, up to n for a pre-admission), refused layer (0 none, 1..6 request bucket global, tenant, environment, key,
--   address, address generation; -1 blocked, -2 concurrency, -3 key tokens, -4 tenant tokens,
--   -5 environment tokens), retry after ms, limit, remaining, reset ms, delay ms, newly blocked (1/0) }
local clock = redis.call('TIME')
local now = clock[1] * 1000 + math.floor(clock[2] / 1000)

-- The decision for one request (KEYS and ARGV are that request's slices).
local function admitOne(KEYS, ARGV)
  local kind = tonumber(ARGV[1])
  local keyed = kind ~= 0
  local speculative = kind < 0
  -- m: how many requests this entry admits (1, or up to n for a pre-admission).
  local m = speculative and -kind or 1
  local forced = ARGV[2] == '1'
  local window, blockMs = tonumber(ARGV[16]), tonumber(ARGV[20])
  local EXP = math.max(120000, window, blockMs) + 60000

  -- Only the layers with a limit are read (a layer without one costs nothing).
  local G, T, E, K
  if not forced and tonumber(ARGV[3]) > 0 then G = redis.call('HMGET', KEYS[1], 't', 'ts', 'x') end
  if keyed then
    if tonumber(ARGV[4]) > 0 or tonumber(ARGV[9]) > 0 then T = redis.call('HMGET', KEYS[2], 't', 'ts', 'x', 'kt', 'kts') end
    if tonumber(ARGV[5]) > 0 or tonumber(ARGV[10]) > 0 then E = redis.call('HMGET', KEYS[3], 't', 'ts', 'x', 'kt', 'kts') end
    K = redis.call('HMGET', KEYS[4], 't', 'ts', 'x', 'kt', 'kts', 'b', 'v', 'vw', 'cx')
  end
  local A = redis.call('HMGET', KEYS[6], 't', 'ts', 'x', 'gt', 'gts', 'b', 'v', 'vw')

  -- Blocked offenders are refused without spending anything.
  if keyed and K[6] and tonumber(K[6]) > now then return { 0, -1, K[6] - now, 0, 0, 0, 0, 0 } end
  if A[6] and tonumber(A[6]) > now then return { 0, -1, A[6] - now, 0, 0, 0, 0, 0 } end

  local function level(tokens, ts, cap)
    if not tokens then return cap end
    tokens = tonumber(tokens)
    local dt = now - tonumber(ts)
    if dt > 0 then tokens = tokens + dt * cap / 60000 end
    if tokens > cap then return cap end
    return tokens
  end

  -- Writes fields, refreshing the expiry when less than half of it is left.
  local function put(key, x, ...)
    if x and tonumber(x) - now >= EXP / 2 then
      redis.call('HSET', key, ...)
    else
      redis.call('HSET', key, 'x', now + EXP, ...)
      redis.call('PEXPIRE', key, EXP)
    end
  end

  local function bump(key, v, vw)
    local n, wend = 1, tonumber(vw)
    if wend and wend > now then n = tonumber(v) + 1 else wend = now + window end
    if n >= tonumber(ARGV[18]) then
      redis.call('HSET', key, 'v', 0, 'vw', wend, 'b', now + blockMs, 'x', now + EXP)
      redis.call('PEXPIRE', key, EXP)
      return n, 1
    end
    redis.call('HSET', key, 'v', n, 'vw', wend, 'x', now + EXP)
    redis.call('PEXPIRE', key, EXP)
    return n, 0
  end

  local function violate(code, retryMs, lim, rem, reset)
    if speculative then return { 0, code, math.ceil(retryMs), lim, rem, math.ceil(reset), 0, 0 } end
    local worst, newlyBlocked = bump(KEYS[6], A[7], A[8])
    if keyed then
      local n, b = bump(KEYS[4], K[7], K[8])
      if n > worst then worst = n end
      if b == 1 then newlyBlocked = 1 end
    end
    local delay, after = 0, tonumber(ARGV[17])
    if worst > after then delay = math.min(tonumber(ARGV[19]), 50 * 2 ^ math.min(20, worst - after - 1)) end
    return { 0, code, math.ceil(retryMs), lim, rem, math.ceil(reset), math.floor(delay), newlyBlocked }
  end

  -- Request buckets, in layer order; the tightest one names the X-RateLimit-* headers.
  local lim, rem, reset, best = 0, 0, 0, nil
  local function refuse(code, lv, cap)
    return violate(code, (1 - lv) * 60000 / cap, cap, 0, (cap - lv) * 60000 / cap)
  end
  local function consider(lv, cap)
    if best == nil or lv - 1 < best then
      best = lv - 1
      lim, rem, reset = cap, math.floor(lv - 1), (cap - lv + 1) * 60000 / cap
    end
  end
  local gcap, tcap, ecap, kcap = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
  local acap, agcap = tonumber(ARGV[7]), tonumber(ARGV[8])
  local gl, tl, el, kl, al, agl
  if not forced then
    if gcap > 0 then gl = level(G[1], G[2], gcap); if gl < 1 then return refuse(1, gl, gcap) end; consider(gl, gcap) end
    if keyed then
      if tcap > 0 then tl = level(T[1], T[2], tcap); if tl < 1 then return refuse(2, tl, tcap) end; consider(tl, tcap) end
      if ecap > 0 then el = level(E[1], E[2], ecap); if el < 1 then return refuse(3, el, ecap) end; consider(el, ecap) end
      if kcap > 0 then kl = level(K[1], K[2], kcap); if kl < 1 then return refuse(4, kl, kcap) end; consider(kl, kcap) end
    end
  end
  if acap > 0 then al = level(A[1], A[2], acap); if al < 1 then return refuse(5, al, acap) end; consider(al, acap) end
  if forced then
    if al then redis.call('HSET', KEYS[6], 't', al - 1, 'ts', now) end
    return violate(0, 0, lim, rem, math.ceil(reset))
  end
  if agcap > 0 then agl = level(A[4], A[5], agcap); if agl < 1 then return refuse(6, agl, agcap) end; consider(agl, agcap) end
  -- The lowest request level (best + 1) bounds how many one entry admits.
  if best and best + 1 < m then m = math.floor(best + 1) end

  -- Token buckets (tenant, environment, key): each reserves min(reservation, its tokens/min).
  local reserve = tonumber(ARGV[12])
  local tt, et, kt = 0, 0, 0
  local tr, er, kr, tlv, elv, klv
  -- How many reservations of r fit in level lv (m at most).
  local function fits(lv, r)
    if r > 0 and lv < r * m then m = math.floor(lv / r) end
  end
  if keyed then
    tt, et, kt = tonumber(ARGV[9]), tonumber(ARGV[10]), tonumber(ARGV[11])
    if tt > 0 then
      tr, tlv = math.min(reserve, tt), level(T[4], T[5], tt)
      if tlv < tr then return violate(-4, (tr - tlv) * 60000 / tt, lim, rem, reset) end
      fits(tlv, tr)
    end
    if et > 0 then
      er, elv = math.min(reserve, et), level(E[4], E[5], et)
      if elv < er then return violate(-5, (er - elv) * 60000 / et, lim, rem, reset) end
      fits(elv, er)
    end
    if kt > 0 then
      kr, klv = math.min(reserve, kt), level(K[4], K[5], kt)
      if klv < kr then return violate(-3, (kr - klv) * 60000 / kt, lim, rem, reset) end
      fits(klv, kr)
    end
  end

  -- Concurrency lease (expired leases are swept only when the set looks full).
  local climit = keyed and tonumber(ARGV[13]) or 0
  if climit > 0 then
    local n = redis.call('ZCARD', KEYS[5])
    if n >= climit then
      redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', now)
      n = redis.call('ZCARD', KEYS[5])
      if n >= climit then return violate(-2, 1000, lim, rem, reset) end
    end
    local ttl = tonumber(ARGV[15])
    if speculative then
      if climit - n < m then m = climit - n end
      local members = {}
      for j = 1, m do members[2 * j - 1] = now + ttl; members[2 * j] = ARGV[14] .. '.' .. j end
      redis.call('ZADD', KEYS[5], unpack(members))
    else
      redis.call('ZADD', KEYS[5], now + ttl, ARGV[14])
    end
    if not K[9] or tonumber(K[9]) - now < ttl * 2 then
      redis.call('PEXPIRE', KEYS[5], ttl * 4)
      redis.call('HSET', KEYS[4], 'cx', now + ttl * 4)
    end
  end

  -- Spend (m requests; each reserves its tokens).
  local ttok, etok, ktok
  if tr then ttok = tlv - tr * m end
  if er then etok = elv - er * m end
  if kr then ktok = klv - kr * m end
  if gl then put(KEYS[1], G[3], 't', gl - m, 'ts', now) end
  if keyed then
    if tl and ttok then put(KEYS[2], T[3], 't', tl - m, 'ts', now, 'kt', ttok, 'kts', now)
    elseif tl then put(KEYS[2], T[3], 't', tl - m, 'ts', now)
    elseif ttok then put(KEYS[2], T[3], 'kt', ttok, 'kts', now) end
    if el and etok then put(KEYS[3], E[3], 't', el - m, 'ts', now, 'kt', etok, 'kts', now)
    elseif el then put(KEYS[3], E[3], 't', el - m, 'ts', now)
    elseif etok then put(KEYS[3], E[3], 'kt', etok, 'kts', now) end
    if kl and ktok then put(KEYS[4], K[3], 't', kl - m, 'ts', now, 'kt', ktok, 'kts', now)
    elseif kl then put(KEYS[4], K[3], 't', kl - m, 'ts', now)
    elseif ktok then put(KEYS[4], K[3], 'kt', ktok, 'kts', now) end
  end
  if al and agl then put(KEYS[6], A[3], 't', al - m, 'ts', now, 'gt', agl - m, 'gts', now)
  elseif al then put(KEYS[6], A[3], 't', al - m, 'ts', now)
  elseif agl then put(KEYS[6], A[3], 'gt', agl - m, 'gts', now) end
  return { m, 0, 0, lim, rem, math.ceil(reset), 0, 0 }
end

local replies = {}
local k, a = {}, {}
for i = 0, #KEYS / 6 - 1 do
  for j = 1, 6 do k[j] = KEYS[i * 6 + j] end
  for j = 1, 20 do a[j] = ARGV[i * 20 + j] end
  replies[i + 1] = admitOne(k, a)
end
return replies
