-- Debit a viewer for a gift, a subscription or a shop purchase: one atomic step.
-- All keys are in the payer's shard slot.
-- KEYS: 1 wallet, 2 idempotency record, 3 outbox stream, 4 ledger stream,
--       5 rolling-day spend window (zset), 6 kind-specific key (gift: streak counter;
--       sub: subscription expiry; shop: the payer's orders list), 7 shard users set
-- ARGV: 1 args hash, 2 amount, 3 now ms, 4 day limit, 5 idempotency ttl s, 6 kind,
--       7 user, 8 key, 9 outbox payload (json), 10 reply template (json),
--       11 kind param A, 12 kind param B, 13 wallet channel
-- Returns {status, reply json}; status ok | dup | conflict | insufficient | limit.
local prior = redis.call('GET', KEYS[2])
if prior then
  local nl = string.find(prior, '\n', 1, true)
  if string.sub(prior, 1, nl - 1) ~= ARGV[1] then return {'conflict', ''} end
  return {'dup', string.sub(prior, nl + 1)}
end

local amount = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local coins = tonumber(redis.call('HGET', KEYS[1], 'coins') or '0')
if coins < amount then return {'insufficient', tostring(coins)} end

-- rolling-day spend window: members are "key|amount", scored by time
local day = tonumber(redis.call('HGET', KEYS[1], 'day') or '0')
-- the window expires after a quiet day; its running total must go with it
if redis.call('EXISTS', KEYS[5]) == 0 then day = 0 end
local cutoff = now - 86400000
local old = redis.call('ZRANGEBYSCORE', KEYS[5], '-inf', cutoff)
if #old > 0 then
  for _, m in ipairs(old) do
    day = day - tonumber(string.match(m, '|(%d+)$'))
  end
  redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', cutoff)
  redis.call('HSET', KEYS[1], 'day', day)
end
if day + amount > tonumber(ARGV[4]) then return {'limit', tostring(day)} end

local user, key, kind = ARGV[7], ARGV[8], ARGV[6]
local reply = cjson.decode(ARGV[10])
coins = redis.call('HINCRBY', KEYS[1], 'coins', -amount)
redis.call('HINCRBY', KEYS[1], 'coins_out', amount)
redis.call('HSET', KEYS[1], 'day', day + amount)
redis.call('ZADD', KEYS[5], now, key .. '|' .. amount)
redis.call('PEXPIRE', KEYS[5], 86400000 + 60000)
reply['coins'] = coins

if kind == 'gift' then
  local window, count = tonumber(ARGV[11]), tonumber(ARGV[12])
  local combo = count
  if window > 0 then
    combo = redis.call('INCRBY', KEYS[6], count)
    redis.call('PEXPIRE', KEYS[6], window)
  end
  reply['combo'] = combo
elseif kind == 'sub' then
  local now_s = math.floor(now / 1000)
  local current = tonumber(redis.call('GET', KEYS[6]) or '0')
  local base = current
  if base < now_s then base = now_s end
  local untl = base + tonumber(ARGV[11])
  redis.call('SET', KEYS[6], untl)
  redis.call('EXPIREAT', KEYS[6], untl + 86400)
  reply['until'] = untl
elseif kind == 'shop' then
  redis.call('LPUSH', KEYS[6], ARGV[11])
end

local payload = cjson.decode(ARGV[9])
if reply['combo'] and payload['ev'] then payload['ev']['combo'] = reply['combo'] end
if reply['until'] and payload['ev'] then payload['ev']['until'] = reply['until'] end
local p = cjson.encode(payload)
redis.call('XADD', KEYS[3], '*', 'kind', kind, 'user', user, 'coins', amount, 'key', key, 'p', p)
redis.call('XADD', KEYS[4], '*', 't', 'spend', 'kind', kind, 'user', user, 'coins', amount,
  'key', key, 'ts', now)
redis.call('SADD', KEYS[7], user)

local out = cjson.encode(reply)
redis.call('SET', KEYS[2], ARGV[1] .. '\n' .. out, 'EX', tonumber(ARGV[5]))
local w = redis.call('HMGET', KEYS[1], 'diamonds', 'pending')
redis.call('PUBLISH', ARGV[13], cjson.encode({user = user, coins = coins,
  diamonds = tonumber(w[1] or '0'), pending = tonumber(w[2] or '0')}))
return {'ok', out}
