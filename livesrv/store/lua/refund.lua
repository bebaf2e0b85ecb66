-- Take a refunded (or charged back) receipt's coins back from the buyer: step 2 of a refund,
-- in the buyer's shard, exactly once per receipt (the reply is kept forever).
-- The balance may go below zero. The shortfall (the receipt's coins already spent:
-- min(coins, coins - balance before) when positive) is attributed to the buyer's spends,
-- newest first, skipping spends that earned nobody (treasure boxes) and coins of a spend
-- already clawed back; each attributed part is a clawback entry in the outbox (negative
-- coins, the spend's earners), which settlement turns into negative diamond credits.
-- KEYS: 1 wallet, 2 refund record, 3 outbox, 4 ledger, 5 the buyer's spends index (zset),
--       6 the buyer's clawed hash, 7 shard users set, 8 the purchase's credit record
-- ARGV: 1 receipt id, 2 kind, 3 coins, 4 user, 5 now ms, 6 wallet channel,
--       7 spends walked at most
-- Returns {status, reply json}; status ok | dup (the first reply) | uncredited (the
-- purchase credit is not in the store: nothing moved).
local prior = redis.call('GET', KEYS[2])
if prior then return {'dup', prior} end
if redis.call('EXISTS', KEYS[8]) == 0 then return {'uncredited', ''} end
local rid, kind, coins, user, now = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4], ARGV[5]
local before = tonumber(redis.call('HGET', KEYS[1], 'coins') or '0')
local after = redis.call('HINCRBY', KEYS[1], 'coins', -coins)
local shortfall = coins - before
if before < 0 then shortfall = coins end
if shortfall < 0 then shortfall = 0 end
if shortfall > coins then shortfall = coins end
local left, clawed, entries, start = shortfall, 0, 0, 0
local cap = tonumber(ARGV[7])
while left > 0 and start < cap do
  local ids = redis.call('ZREVRANGE', KEYS[5], start, start + 99)
  if #ids == 0 then break end
  for _, id in ipairs(ids) do
    if left <= 0 then break end
    local rows = redis.call('XRANGE', KEYS[3], id, id)
    if #rows > 0 then
      local f = {}
      for i = 1, #rows[1][2], 2 do f[rows[1][2][i]] = rows[1][2][i + 1] end
      local amount = tonumber(f.coins)
      local done = tonumber(redis.call('HGET', KEYS[6], id) or '0')
      local e = cjson.decode(f.p).e
      if f.user == user and type(e) == 'table' and #e > 0 and amount > done then
        local take = math.min(amount - done, left)
        redis.call('HINCRBY', KEYS[6], id, take)
        redis.call('XADD', KEYS[3], '*', 'kind', 'clawback', 'user', user, 'coins', -take,
          'key', 'refund:' .. rid, 'p', string.format('{"e":%s,"of":"%s","src":"%s"}',
          cjson.encode(e), id, f.kind), 'x', 0)
        redis.call('XADD', KEYS[4], '*', 't', 'clawback', 'kind', f.kind, 'user', user,
          'coins', take, 'of', id, 'ref', 'refund:' .. rid, 'ts', now)
        left, clawed, entries = left - take, clawed + take, entries + 1
      end
    end
  end
  start = start + 100
end
redis.call('XADD', KEYS[4], '*', 't', 'refund', 'kind', kind, 'user', user, 'coins', coins,
  'ref', rid, 'shortfall', shortfall, 'clawed', clawed, 'ts', now)
redis.call('SADD', KEYS[7], user)
local out = string.format('{"receipt":%s,"kind":%s,"user":%s,"coins":%d,"balance":%d,'
  .. '"shortfall":%d,"clawed":%d,"clawbacks":%d}', cjson.encode(rid), cjson.encode(kind),
  cjson.encode(user), coins, after, shortfall, clawed, entries)
redis.call('SET', KEYS[2], out)
local w = redis.call('HMGET', KEYS[1], 'diamonds', 'pending')
redis.call('SPUBLISH', ARGV[6], string.format('{"user":%s,"coins":%d,"diamonds":%s,"pending":%s}',
  cjson.encode(user), after, w[1] or '0', w[2] or '0'))
return {'ok', out}
