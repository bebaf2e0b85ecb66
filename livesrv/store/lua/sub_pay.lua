-- A viewer pays for a subscription (new period, renewal or upgrade): one atomic step that
-- debits the wallet and writes the subscription record. All keys are in the payer's slot.
-- The plan (amount, new end, tier, months) is computed by the caller from the record it
-- read (services/sub_rules.py); ARGV[11] is that record as read, and when the record
-- changed since, nothing moves ('changed': the caller reads it again and re-plans).
-- KEYS: 1 wallet, 2 idempotency record, 3 outbox stream, 4 ledger stream,
--       5 rolling-day spend window (zset), 6 subscription end (unix s, string),
--       7 subscription record (hash: tier, price, months, g:REF), 8 shard users set,
--       9 the payer's spends index (zset, as spend.lua keeps it for refunds)
-- ARGV: 1 args hash, 2 amount, 3 now ms, 4 day limit, 5 key generation's expiry (unix ms),
--       6 user, 7 key, 8 outbox payload (json), 9 reply template (json), 10 wallet channel,
--       11 expected record "until|tier|months", 12 new end (unix s), 13 tier,
--       14 tier price, 15 months to add (0 or 1)
-- Returns {status, reply json, generation expiry ms}; status ok | dup | conflict |
-- insufficient | limit | expired | changed | minor (the account is flagged a minor).
--@step keyed
local stop = keyed(KEYS, ARGV)
if stop then return stop end
local exp = tonumber(ARGV[5])
local r = redis.call('HMGET', KEYS[7], 'tier', 'months')
local seen = (redis.call('GET', KEYS[6]) or '0') .. '|' .. (r[1] or '0') .. '|' .. (r[2] or '0')
if seen ~= ARGV[11] then return {'changed', seen, 0} end

local amount = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
--@step debit_checks
local w = redis.call('HMGET', KEYS[1], 'coins', 'minor', 'day')
local refused, day = debit_checks(KEYS, {amount, now, ARGV[4], w})
if refused then return refused end

local user, key = ARGV[6], ARGV[7]
local coins = redis.call('HINCRBY', KEYS[1], 'coins', -amount)
redis.call('HINCRBY', KEYS[1], 'coins_out', amount)
redis.call('HSET', KEYS[1], 'day', day + amount)
redis.call('ZADD', KEYS[5], now, string.format('%s|%d|%d', key, exp, amount))
redis.call('PEXPIRE', KEYS[5], 86400000 + 60000)

local untl = tonumber(ARGV[12])
redis.call('SET', KEYS[6], ARGV[12])
redis.call('EXPIREAT', KEYS[6], untl + 86400)
redis.call('HSET', KEYS[7], 'tier', ARGV[13], 'price', ARGV[14])
local months = redis.call('HINCRBY', KEYS[7], 'months', tonumber(ARGV[15]))

local body = string.sub(ARGV[9], 2)
if body ~= '}' then body = ',' .. body end
local reply = string.format('{"coins":%d,"paid":%d,"months":%d', coins, amount, months) .. body
local eid = redis.call('XADD', KEYS[3], '*', 'kind', 'sub', 'user', user, 'coins', amount,
  'key', key, 'p', ARGV[8], 'x', exp, 'until', untl, 'months', months)
redis.call('ZADD', KEYS[9], now, eid)
redis.call('XADD', KEYS[4], '*', 't', 'spend', 'kind', 'sub', 'user', user, 'coins', amount,
  'key', key, 'x', exp, 'ts', now)
redis.call('SADD', KEYS[8], user)
redis.call('SET', KEYS[2], ARGV[1] .. '\n' .. reply, 'PXAT', exp)
local w = redis.call('HMGET', KEYS[1], 'diamonds', 'pending')
redis.call('SPUBLISH', ARGV[10], string.format('{"user":%s,"coins":%d,"diamonds":%s,"pending":%s}',
  cjson.encode(user), coins, w[1] or '0', w[2] or '0'))
return {'ok', reply, exp}
