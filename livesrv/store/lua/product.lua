-- Create a product, or restock one. Keys in the product's slot.
-- KEYS: 1 product record
-- ARGV: 1 action (create | restock), 2 caller, 3 caller is admin ('1'/'0'),
--       create: 4 product id, 5 title, 6 seller, 7 price, 8 stock, 9 commission bps, 10 now ms
--       restock: 4 quantity
-- Returns {status, stock}; status ok | exists | not_found | forbidden.
if ARGV[1] == 'create' then
  if redis.call('EXISTS', KEYS[1]) == 1 then return {'exists', 0} end
  redis.call('HSET', KEYS[1], 'product', ARGV[4], 'title', ARGV[5], 'seller', ARGV[6],
    'price', ARGV[7], 'stock', ARGV[8], 'stocked', ARGV[8], 'sold', 0, 'reserved', 0,
    'commission', ARGV[9], 'created', ARGV[10])
  return {'ok', tonumber(ARGV[8])}
end
local seller = redis.call('HGET', KEYS[1], 'seller')
if not seller then return {'not_found', 0} end
if seller ~= ARGV[2] and ARGV[3] ~= '1' then return {'forbidden', 0} end
redis.call('HINCRBY', KEYS[1], 'stocked', tonumber(ARGV[4]))
return {'ok', redis.call('HINCRBY', KEYS[1], 'stock', tonumber(ARGV[4]))}
