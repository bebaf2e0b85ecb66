-- Credit coins to a wallet: a coin purchase (by receipt) or an admin grant (by key).
-- KEYS: 1 wallet, 2 idempotency record, 3 ledger stream, 4 shard users set
-- ARGV: 1 args hash, 2 amount, 3 kind (purchase | grant), 4 user, 5 key,
--       6 idempotency ttl s (0 = keep forever), 7 reference, 8 now ms, 9 wallet channel
-- Returns {status, reply json}; status ok | dup | conflict | overflow (the balance would
-- pass 2^53 - 1, the largest exact integer: nothing moves; the reply is the balance).
local prior = redis.call('GET', KEYS[2])
if prior then
  local nl = string.find(prior, '\n', 1, true)
  if string.sub(prior, 1, nl - 1) ~= ARGV[1] then return {'conflict', ''} end
  return {'dup', string.sub(prior, nl + 1)}
end
local amount = tonumber(ARGV[2])
local held = tonumber(redis.call('HGET', KEYS[1], 'coins') or '0')
if amount > 9007199254740991 - held then return {'overflow', string.format('%d', held)} end
local ttl = tonumber(ARGV[6])
local exp = 0 -- the key generation's expiry (unix ms); 0: kept forever
if ttl > 0 then exp = tonumber(ARGV[8]) + ttl * 1000 end
local coins = redis.call('HINCRBY', KEYS[1], 'coins', amount)
redis.call('HINCRBY', KEYS[1], 'coins_in', amount)
redis.call('XADD', KEYS[3], '*', 't', 'credit', 'kind', ARGV[3], 'user', ARGV[4],
  'coins', amount, 'key', ARGV[5], 'x', exp, 'ref', ARGV[7], 'ts', ARGV[8])
redis.call('SADD', KEYS[4], ARGV[4])
local out = string.format('{"coins":%d}', coins)
if exp > 0 then
  redis.call('SET', KEYS[2], ARGV[1] .. '\n' .. out, 'PXAT', exp)
else
  redis.call('SET', KEYS[2], ARGV[1] .. '\n' .. out)
end
local w = redis.call('HMGET', KEYS[1], 'diamonds', 'pending')
redis.call('SPUBLISH', ARGV[9], string.format('{"user":%s,"coins":%d,"diamonds":%s,"pending":%s}',
  cjson.encode(ARGV[4]), coins, w[1] or '0', w[2] or '0'))
return {'ok', out}
