-- Publish a series, change its price, or unpublish it. Keys in the series' slot.
-- KEYS: 1 series record (hash)
-- ARGV: 1 action (create | price | unpublish), 2 caller, 3 caller is admin ('1'/'0'),
--       create: 4 series id, 5 title, 6 description, 7 price, 8 episodes (json), 9 now ms
--       price: 4 new price
-- Returns {status, creator}; status ok | exists | not_found | forbidden. An unpublished
-- series stays stored (its buyers keep access); it is never published again.
if ARGV[1] == 'create' then
  local owner = redis.call('HGET', KEYS[1], 'creator')
  if owner then return {'exists', owner} end
  redis.call('HSET', KEYS[1], 'series', ARGV[4], 'creator', ARGV[2], 'title', ARGV[5],
    'description', ARGV[6], 'price', ARGV[7], 'episodes', ARGV[8], 'published', 1,
    'created', ARGV[9])
  return {'ok', ARGV[2]}
end
local owner = redis.call('HGET', KEYS[1], 'creator')
if not owner then return {'not_found', ''} end
if owner ~= ARGV[2] and ARGV[3] ~= '1' then return {'forbidden', owner} end
if ARGV[1] == 'price' then
  redis.call('HSET', KEYS[1], 'price', ARGV[4])
elseif ARGV[1] == 'unpublish' then
  redis.call('HSET', KEYS[1], 'published', 0)
end
return {'ok', owner}
