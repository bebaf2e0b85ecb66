-- Mark a requested withdrawal paid, or rejected (which returns its diamonds).
-- KEYS: 1 withdrawal record, 2 the creator's wallet, 3 ledger
-- ARGV: 1 new status (paid | rejected), 2 now ms, 3 wallet channel
-- Returns {status, current status}; status ok | not_found | final. The same decision
-- again is ok and moves nothing.
local cur = redis.call('HGET', KEYS[1], 'status')
if not cur then return {'not_found', ''} end
if cur == ARGV[1] then return {'ok', cur} end -- a retried decision changes nothing
if cur ~= 'requested' then return {'final', cur} end
redis.call('HSET', KEYS[1], 'status', ARGV[1], 'updated', ARGV[2])
if ARGV[1] == 'rejected' then
  local amount = tonumber(redis.call('HGET', KEYS[1], 'diamonds'))
  local user = redis.call('HGET', KEYS[1], 'user')
  redis.call('HINCRBY', KEYS[2], 'diamonds', amount)
  redis.call('HINCRBY', KEYS[2], 'withdrawn', -amount)
  redis.call('XADD', KEYS[3], '*', 't', 'reject', 'user', user, 'diamonds', amount,
    'ref', redis.call('HGET', KEYS[1], 'id'), 'ts', ARGV[2])
  local w = redis.call('HMGET', KEYS[2], 'coins', 'diamonds', 'pending')
  redis.call('SPUBLISH', ARGV[3], string.format('{"user":%s,"coins":%s,"diamonds":%s,"pending":%s}',
    cjson.encode(user), w[1] or '0', w[2] or '0', w[3] or '0'))
end
return {'ok', ARGV[1]}
