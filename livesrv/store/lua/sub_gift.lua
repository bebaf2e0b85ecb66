-- A viewer pays for N gifted subscriptions: one atomic step in the gifter's slot, all or
-- nothing. Each gift is its own movement (ledger spend and outbox entry, key "KEY#i",
-- kind sub_gift); the recipients' periods are granted afterwards in their own slots
-- (sub_grant.lua, by the gift's ref), by the request or by the settlement worker.
-- KEYS: 1 wallet, 2 idempotency record, 3 outbox stream, 4 ledger stream,
--       5 rolling-day spend window (zset), 6 shard users set, 7 the payer's spends index
--       (zset, as spend.lua keeps it for refunds)
-- ARGV: 1 args hash, 2 price of one gift, 3 now ms, 4 day limit, 5 the key generation's
--       expiry (unix ms), 6 user, 7 key, 8 reply template (json: recipients, tier, ...),
--       9 wallet channel, 10.. one outbox payload (json) per gift
-- Returns {status, reply json, generation expiry ms}; status ok | dup | conflict |
-- insufficient | limit | expired | minor (the account is flagged a minor).
--@step keyed
local stop = keyed(KEYS, ARGV)
if stop then return stop end
local exp = tonumber(ARGV[5])

local price = tonumber(ARGV[2])
local n = #ARGV - 9
local amount = price * n
local now = tonumber(ARGV[3])
--@step debit_checks
local w = redis.call('HMGET', KEYS[1], 'coins', 'minor', 'day')
local refused, day = debit_checks(KEYS, {amount, now, ARGV[4], w})
if refused then return refused end

local user, key = ARGV[6], ARGV[7]
local coins = redis.call('HINCRBY', KEYS[1], 'coins', -amount)
redis.call('HINCRBY', KEYS[1], 'coins_out', amount)
redis.call('HSET', KEYS[1], 'day', day + amount)
for i = 1, n do
  local k = string.format('%s#%d', key, i)
  redis.call('ZADD', KEYS[5], now, string.format('%s|%d|%d', k, exp, price))
  local eid = redis.call('XADD', KEYS[3], '*', 'kind', 'sub_gift', 'user', user,
    'coins', price, 'key', k, 'p', ARGV[9 + i], 'x', exp)
  redis.call('ZADD', KEYS[7], now, eid)
  redis.call('XADD', KEYS[4], '*', 't', 'spend', 'kind', 'sub_gift', 'user', user,
    'coins', price, 'key', k, 'x', exp, 'ts', now)
end
redis.call('PEXPIRE', KEYS[5], 86400000 + 60000)
redis.call('SADD', KEYS[6], user)

local body = string.sub(ARGV[8], 2)
if body ~= '}' then body = ',' .. body end
local reply = string.format('{"coins":%d,"paid":%d', coins, amount) .. body
redis.call('SET', KEYS[2], ARGV[1] .. '\n' .. reply, 'PXAT', exp)
local w = redis.call('HMGET', KEYS[1], 'diamonds', 'pending')
redis.call('SPUBLISH', ARGV[9], string.format('{"user":%s,"coins":%d,"diamonds":%s,"pending":%s}',
  cjson.encode(user), coins, w[1] or '0', w[2] or '0'))
return {'ok', reply, exp}
