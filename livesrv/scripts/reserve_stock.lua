-- Step 1 of a purchase: hold stock for one buyer's keyed order. Keys in the product's slot.
-- KEYS: 1 product record, 2 reservations (hash: "user|key" -> state json),
--       3 reservation queue (zset: "user|key" -> time)
-- ARGV: 1 "user|key", 2 quantity, 3 args hash, 4 now ms
-- Returns {status, stock}; status reserved | sold (an earlier try finished) | conflict |
-- out_of_stock | not_found. A cancelled earlier try is tried again.
local stock = tonumber(redis.call('HGET', KEYS[1], 'stock') or '-1')
if stock < 0 then return {'not_found', 0} end
local prior = redis.call('HGET', KEYS[2], ARGV[1])
if prior then
  local r = cjson.decode(prior)
  if r['h'] ~= ARGV[3] then return {'conflict', stock} end
  if r['s'] == 'reserved' or r['s'] == 'sold' then return {r['s'], stock} end
end
local qty = tonumber(ARGV[2])
if stock < qty then return {'out_of_stock', stock} end
stock = redis.call('HINCRBY', KEYS[1], 'stock', -qty)
redis.call('HINCRBY', KEYS[1], 'reserved', qty)
redis.call('HSET', KEYS[2], ARGV[1], cjson.encode({s = 'reserved', q = qty, h = ARGV[3]}))
redis.call('ZADD', KEYS[3], tonumber(ARGV[4]), ARGV[1])
return {'reserved', stock}
