-- Debit a viewer for a gift, a subscription or a shop purchase: one atomic step.
-- All keys are in the payer's shard slot.
-- KEYS: 1 wallet, 2 idempotency record, 3 outbox stream, 4 ledger stream,
--       5 rolling-day spend window (zset), 6 kind-specific key (gift: streak counter;
--       sub: subscription expiry; shop: the payer's orders list; series: the payer's
--       series access hash), 7 shard users set, 8 the payer's spends index (zset)
-- ARGV: 1 args hash, 2 amount, 3 now ms, 4 day limit, 5 the key generation's expiry
--       (unix ms; the idempotency record dies then), 6 kind,
--       7 user, 8 key, 9 outbox payload (json), 10 reply template (json, no numbers),
--       11 kind param A, 12 kind param B, 13 wallet channel, 14 '1' when the caller logs
--       the room event in this same atomic step (gift.lua): the outbox entry says so
--       ("logged"), and settlement does not look for the event
-- Returns {status, reply json, generation expiry ms}; status ok | dup | conflict |
-- insufficient | limit | expired (the generation ended before this step: nothing moved) |
-- owned (series: the payer already has access, nothing moved; reply {"coins", "owned"}) |
-- minor (the account is flagged a minor, services/refunds.py: nothing moved).
-- Numbers are written into JSON with %d, never by cjson (14 significant digits).
--@step keyed
local stop = keyed(KEYS, ARGV)
if stop then return stop end
local exp = tonumber(ARGV[5])

local function put(json, name, n)
  local rest = string.sub(json, 2)
  if rest ~= '}' then rest = ',' .. rest end
  return '{"' .. name .. '":' .. string.format('%d', n) .. rest
end

local amount = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
-- one read of the wallet: what the checks need, and what the wallet event repeats
local w = redis.call('HMGET', KEYS[1], 'coins', 'minor', 'day', 'coins_out', 'diamonds',
  'pending')
-- series: access is bought once, whatever the key; the access record is written below.
-- A minor is refused as a minor first (by debit_checks), so only a payer not flagged asks.
if not w[2] and ARGV[6] == 'series' and redis.call('HEXISTS', KEYS[6], ARGV[11]) == 1 then
  return {'owned', string.format('{"coins":%d,"owned":true}', tonumber(w[1] or '0')), 0}
end
--@step debit_checks
local refused, day = debit_checks(KEYS, {amount, now, ARGV[4], w})
if refused then return refused end

local user, key, kind = ARGV[7], ARGV[8], ARGV[6]
local reply = ARGV[10]
local extra = {}
-- one write of the wallet: the debit_checks read it in this step, so the sums are exact
-- (balances stay below 2^53, credit.lua) and written with %d
local coins = tonumber(w[1] or '0') - amount
redis.call('HSET', KEYS[1], 'coins', string.format('%d', coins),
  'coins_out', string.format('%d', tonumber(w[4] or '0') + amount),
  'day', string.format('%d', day + amount))
-- the generation in the member: a reused key never overwrites an earlier spend's entry
redis.call('ZADD', KEYS[5], now, string.format('%s|%d|%d', key, exp, amount))
redis.call('PEXPIRE', KEYS[5], 86400000 + 60000)
reply = put(reply, 'coins', coins)

if kind == 'gift' then
  local window, count = tonumber(ARGV[11]), tonumber(ARGV[12])
  local combo = count
  if window > 0 then
    combo = redis.call('INCRBY', KEYS[6], count)
    redis.call('PEXPIRE', KEYS[6], window)
  end
  reply = put(reply, 'combo', combo)
  extra = {'combo', combo}
elseif kind == 'sub' then
  local now_s = math.floor(now / 1000)
  local current = tonumber(redis.call('GET', KEYS[6]) or '0')
  local base = current
  if base < now_s then base = now_s end
  local untl = base + tonumber(ARGV[11])
  redis.call('SET', KEYS[6], untl)
  redis.call('EXPIREAT', KEYS[6], untl + 86400)
  reply = put(reply, 'until', untl)
  extra = {'until', untl}
elseif kind == 'shop' then
  redis.call('LPUSH', KEYS[6], ARGV[11])
elseif kind == 'series' then
  redis.call('HSET', KEYS[6], ARGV[11], string.format('%d|%d', amount, now))
end

-- the streak or the subscription end goes beside the payload; settlement puts it in the event
if ARGV[14] == '1' then
  extra[#extra + 1] = 'logged'
  extra[#extra + 1] = '1'
end
local eid = redis.call('XADD', KEYS[3], '*', 'kind', kind, 'user', user, 'coins', amount,
  'key', key, 'p', ARGV[9], 'x', exp, unpack(extra))
redis.call('ZADD', KEYS[8], now, eid) -- a refund's clawback walks these (refund.lua)
redis.call('XADD', KEYS[4], '*', 't', 'spend', 'kind', kind, 'user', user, 'coins', amount,
  'key', key, 'x', exp, 'ts', now)
redis.call('SADD', KEYS[7], user)

redis.call('SET', KEYS[2], ARGV[1] .. '\n' .. reply, 'PXAT', exp)
redis.call('SPUBLISH', ARGV[13], string.format('{"user":%s,"coins":%d,"diamonds":%s,"pending":%s}',
  cjson.encode(user), coins, w[5] or '0', w[6] or '0'))
return {'ok', reply, exp}
