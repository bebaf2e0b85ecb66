-- Move an earner's matured holds from pending to available diamonds.
-- KEYS: 1 earner wallet, 2 earner holds (zset), 3 shard hold queue (zset), 4 ledger
-- ARGV: 1 now ms, 2 earner, 3 wallet channel
-- Returns the diamonds released.
local now = tonumber(ARGV[1])
local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)
local sum = 0
for _, m in ipairs(due) do sum = sum + tonumber(string.match(m, '|(%d+)$')) end
if sum > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
  redis.call('HINCRBY', KEYS[1], 'pending', -sum)
  redis.call('HINCRBY', KEYS[1], 'diamonds', sum)
  redis.call('XADD', KEYS[4], '*', 't', 'release', 'user', ARGV[2], 'diamonds', sum, 'ts', now)
  local w = redis.call('HMGET', KEYS[1], 'coins', 'diamonds', 'pending')
  redis.call('SPUBLISH', ARGV[3], string.format('{"user":%s,"coins":%s,"diamonds":%s,"pending":%s}',
    cjson.encode(ARGV[2]), w[1] or '0', w[2] or '0', w[3] or '0'))
end
local nxt = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
if #nxt > 0 then
  redis.call('ZADD', KEYS[3], tonumber(nxt[2]), ARGV[2])
else
  redis.call('ZREM', KEYS[3], ARGV[2])
end
return sum
