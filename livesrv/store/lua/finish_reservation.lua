-- Step 3 of a purchase: the buyer was debited (sold) or was not (cancel: stock returns).
-- KEYS: 1 product record, 2 reservations (hash), 3 reservation queue (zset)
-- ARGV: 1 "user|key", 2 outcome (sold | cancelled), 3 the key generation's expiry (x) the
--       caller acts for
-- Returns {status, stock}; status ok | missing (no reservation of that generation).
-- Finishing twice changes nothing.
local prior = redis.call('HGET', KEYS[2], ARGV[1])
local stock = tonumber(redis.call('HGET', KEYS[1], 'stock') or '0')
if not prior then
  redis.call('ZREM', KEYS[3], ARGV[1])
  return {'missing', stock}
end
local r = cjson.decode(prior)
local x = tonumber(r['x'] or 0)
if x ~= tonumber(ARGV[3]) then return {'missing', stock} end
if r['s'] ~= 'reserved' then return {'ok', stock} end
redis.call('HINCRBY', KEYS[1], 'reserved', -r['q'])
if ARGV[2] == 'sold' then
  redis.call('HINCRBY', KEYS[1], 'sold', r['q'])
else
  stock = redis.call('HINCRBY', KEYS[1], 'stock', r['q'])
end
redis.call('HSET', KEYS[2], ARGV[1], string.format('{"s":%s,"q":%d,"h":%s,"x":%d}',
  cjson.encode(ARGV[2]), r['q'], cjson.encode(r['h']), x))
redis.call('ZREM', KEYS[3], ARGV[1])
return {'ok', stock}
