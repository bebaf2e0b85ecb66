-- A creator withdraws available diamonds: one atomic step in the creator's slot.
-- KEYS: 1 wallet, 2 idempotency record, 3 ledger, 4 shard withdrawals (zset),
--       5 withdrawal record
-- ARGV: 1 args hash, 2 diamonds, 3 minimum, 4 user, 5 key, 6 the key generation's expiry
--       (unix ms), 7 now ms, 8 cents, 9 withdrawal id (names the generation), 10 wallet channel
-- Returns {status, reply json}; status ok | dup | conflict | min | insufficient.
-- A withdrawal record is never overwritten: its id is unique per key generation.
local prior = redis.call('GET', KEYS[2])
if prior then
  local nl = string.find(prior, '\n', 1, true)
  if string.sub(prior, 1, nl - 1) ~= ARGV[1] then return {'conflict', ''} end
  return {'dup', string.sub(prior, nl + 1)}
end
local amount = tonumber(ARGV[2])
if amount < tonumber(ARGV[3]) then return {'min', ''} end
if redis.call('EXISTS', KEYS[5]) == 1 then return {'conflict', ''} end
local avail = tonumber(redis.call('HGET', KEYS[1], 'diamonds') or '0')
if avail < amount then return {'insufficient', string.format('%d', avail)} end
local left = redis.call('HINCRBY', KEYS[1], 'diamonds', -amount)
redis.call('HINCRBY', KEYS[1], 'withdrawn', amount)
local now = tonumber(ARGV[7])
redis.call('HSET', KEYS[5], 'id', ARGV[9], 'user', ARGV[4], 'diamonds', amount,
  'cents', ARGV[8], 'status', 'requested', 'created', now, 'key', ARGV[5])
redis.call('ZADD', KEYS[4], now, ARGV[9])
redis.call('XADD', KEYS[3], '*', 't', 'withdraw', 'user', ARGV[4], 'diamonds', amount,
  'key', ARGV[5], 'x', ARGV[6], 'ref', ARGV[9], 'ts', now)
local out = string.format('{"withdrawal":%s,"diamonds":%d,"cents":%s}', cjson.encode(ARGV[9]),
  left, ARGV[8])
redis.call('SET', KEYS[2], ARGV[1] .. '\n' .. out, 'PXAT', tonumber(ARGV[6]))
local w = redis.call('HMGET', KEYS[1], 'coins', 'pending')
redis.call('SPUBLISH', ARGV[10], string.format('{"user":%s,"coins":%s,"diamonds":%d,"pending":%s}',
  cjson.encode(ARGV[4]), w[1] or '0', left, w[2] or '0'))
return {'ok', out}
