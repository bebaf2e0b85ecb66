-- Step 3 of a purchase: the buyer was debited (sold) or was not (cancel: stock returns).
-- KEYS: 1 product record, 2 reservations (hash), 3 reservation queue (zset)
-- ARGV: 1 "user|key", 2 outcome (sold | cancelled)
-- Returns {status, stock}; status ok | missing. Finishing twice changes nothing.
local prior = redis.call('HGET', KEYS[2], ARGV[1])
local stock = tonumber(redis.call('HGET', KEYS[1], 'stock') or '0')
if not prior then return {'missing', stock} end
local r = cjson.decode(prior)
if r['s'] ~= 'reserved' then return {'ok', stock} end
redis.call('HINCRBY', KEYS[1], 'reserved', -r['q'])
if ARGV[2] == 'sold' then
  redis.call('HINCRBY', KEYS[1], 'sold', r['q'])
else
  stock = redis.call('HINCRBY', KEYS[1], 'stock', r['q'])
end
r['s'] = ARGV[2]
redis.call('HSET', KEYS[2], ARGV[1], cjson.encode(r))
redis.call('ZREM', KEYS[3], ARGV[1])
return {'ok', stock}
