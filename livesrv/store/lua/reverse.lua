-- Reverse spends of a minor's (services/refunds.py), each once: the spend's coins go back to
-- the payer, and whatever of it no refund clawed back yet is clawed back from its earners
-- (a clawback entry in the outbox). Spends that earned nobody (treasure boxes) stay.
-- KEYS: 1 wallet, 2 outbox, 3 ledger, 4 the payer's clawed hash
-- ARGV: 1 user, 2 now ms, 3 wallet channel, 4... outbox entry ids (the payer's spends)
-- Returns {spends reversed now, coins returned now}.
local user, now = ARGV[1], ARGV[2]
local n, back = 0, 0
for a = 4, #ARGV do
  local id = ARGV[a]
  local rows = redis.call('XRANGE', KEYS[2], id, id)
  if #rows > 0 and redis.call('HEXISTS', KEYS[4], 'r:' .. id) == 0 then
    local f = {}
    for i = 1, #rows[1][2], 2 do f[rows[1][2][i]] = rows[1][2][i + 1] end
    local amount = tonumber(f.coins)
    local e = cjson.decode(f.p).e
    if f.user == user and type(e) == 'table' and #e > 0 and amount > 0 then
      local take = amount - tonumber(redis.call('HGET', KEYS[4], id) or '0')
      if take > 0 then
        redis.call('XADD', KEYS[2], '*', 'kind', 'clawback', 'user', user, 'coins', -take,
          'key', 'minor:' .. id, 'p', string.format('{"e":%s,"of":"%s","src":"%s"}',
          cjson.encode(e), id, f.kind), 'x', 0)
        redis.call('XADD', KEYS[3], '*', 't', 'clawback', 'kind', f.kind, 'user', user,
          'coins', take, 'of', id, 'ref', 'minor:' .. id, 'ts', now)
      end
      redis.call('HSET', KEYS[4], id, amount, 'r:' .. id, 1)
      redis.call('HINCRBY', KEYS[1], 'coins', amount)
      redis.call('HINCRBY', KEYS[1], 'rev_n', 1)
      redis.call('HINCRBY', KEYS[1], 'rev_coins', amount)
      redis.call('XADD', KEYS[3], '*', 't', 'reverse', 'kind', f.kind, 'user', user,
        'coins', amount, 'of', id, 'ts', now)
      n, back = n + 1, back + amount
    end
  end
end
if n > 0 then
  local w = redis.call('HMGET', KEYS[1], 'coins', 'diamonds', 'pending')
  redis.call('SPUBLISH', ARGV[3], string.format('{"user":%s,"coins":%s,"diamonds":%s,"pending":%s}',
    cjson.encode(user), w[1] or '0', w[2] or '0', w[3] or '0'))
end
return {n, back}
