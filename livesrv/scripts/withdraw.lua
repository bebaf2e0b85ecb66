-- A creator withdraws available diamonds: one atomic step in the creator's slot.
-- KEYS: 1 wallet, 2 idempotency record, 3 ledger, 4 shard withdrawals (zset),
--       5 withdrawal record
-- ARGV: 1 args hash, 2 diamonds, 3 minimum, 4 user, 5 key, 6 idempotency ttl s, 7 now ms,
--       8 cents, 9 withdrawal id, 10 wallet channel
-- Returns {status, reply json}; status ok | dup | conflict | min | insufficient.
local prior = redis.call('GET', KEYS[2])
if prior then
  local nl = string.find(prior, '\n', 1, true)
  if string.sub(prior, 1, nl - 1) ~= ARGV[1] then return {'conflict', ''} end
  return {'dup', string.sub(prior, nl + 1)}
end
local amount = tonumber(ARGV[2])
if amount < tonumber(ARGV[3]) then return {'min', ''} end
local avail = tonumber(redis.call('HGET', KEYS[1], 'diamonds') or '0')
if avail < amount then return {'insufficient', tostring(avail)} end
local left = redis.call('HINCRBY', KEYS[1], 'diamonds', -amount)
redis.call('HINCRBY', KEYS[1], 'withdrawn', amount)
local now = tonumber(ARGV[7])
redis.call('HSET', KEYS[5], 'id', ARGV[9], 'user', ARGV[4], 'diamonds', amount,
  'cents', ARGV[8], 'status', 'requested', 'created', now, 'key', ARGV[5])
redis.call('ZADD', KEYS[4], now, ARGV[9])
redis.call('XADD', KEYS[3], '*', 't', 'withdraw', 'user', ARGV[4], 'diamonds', amount,
  'key', ARGV[5], 'ref', ARGV[9], 'ts', now)
local out = cjson.encode({withdrawal = ARGV[9], diamonds = left, cents = tonumber(ARGV[8])})
redis.call('SET', KEYS[2], ARGV[1] .. '\n' .. out, 'EX', tonumber(ARGV[6]))
local w = redis.call('HMGET', KEYS[1], 'coins', 'pending')
redis.call('PUBLISH', ARGV[10], cjson.encode({user = ARGV[4], coins = tonumber(w[1] or '0'),
  diamonds = left, pending = tonumber(w[2] or '0')}))
return {'ok', out}
