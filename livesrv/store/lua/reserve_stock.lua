-- Step 1 of a purchase: hold stock for one buyer's keyed order. Keys in the product's slot.
-- The reservation is the purchase's first record, so it fixes the key generation's expiry
-- x (unix ms): every other record of the purchase dies then (idempotency record, order id,
-- room event id), and a reservation past its x counts as absent.
-- KEYS: 1 product record, 2 reservations (hash: "user|key" -> {"s","q","h","x"} json),
--       3 reservation queue (zset: "user|key" -> time), 4 reservation expiries (zset:
--       "user|key" -> x; finished ones past x are deleted lazily here)
-- ARGV: 1 "user|key", 2 quantity, 3 args hash, 4 now ms, 5 idempotency ttl ms
-- Returns {status, stock, x}; status reserved (held now) | pending (an earlier try holds
-- it) | sold (an earlier try finished) | conflict | out_of_stock | not_found | busy (an
-- earlier generation was never finished: the sweeper finishes it; retry later). A cancelled
-- try (nothing moved: any arguments may follow) holds stock again in the same generation.
--@step clock
local store_ms = clock(KEYS, ARGV)
for _, ref in ipairs(redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', store_ms, 'LIMIT', 0, 16)) do
  local raw = redis.call('HGET', KEYS[2], ref)
  if not raw or cjson.decode(raw)['s'] ~= 'reserved' then
    redis.call('HDEL', KEYS[2], ref)
    redis.call('ZREM', KEYS[4], ref)
  end
end
local stock = tonumber(redis.call('HGET', KEYS[1], 'stock') or '-1')
if stock < 0 then return {'not_found', 0, 0} end
local x = tonumber(ARGV[4]) + tonumber(ARGV[5])
local prior = redis.call('HGET', KEYS[2], ARGV[1])
if prior then
  local r = cjson.decode(prior)
  local px = tonumber(r['x'] or 0)
  if px > store_ms then
    if r['s'] ~= 'cancelled' and r['h'] ~= ARGV[3] then return {'conflict', stock, px} end
    if r['s'] == 'reserved' then return {'pending', stock, px} end
    if r['s'] == 'sold' then return {'sold', stock, px} end
    x = px
  elseif r['s'] == 'reserved' then
    return {'busy', stock, px}
  end
end
local qty = tonumber(ARGV[2])
if stock < qty then return {'out_of_stock', stock, 0} end
stock = redis.call('HINCRBY', KEYS[1], 'stock', -qty)
redis.call('HINCRBY', KEYS[1], 'reserved', qty)
redis.call('HSET', KEYS[2], ARGV[1],
  string.format('{"s":"reserved","q":%d,"h":%s,"x":%d}', qty, cjson.encode(ARGV[3]), x))
redis.call('ZADD', KEYS[3], tonumber(ARGV[4]), ARGV[1])
redis.call('ZADD', KEYS[4], x, ARGV[1])
return {'reserved', stock, x}
