-- Count a viewer into a room and read what join returns. Keys in the room's slot.
-- KEYS: 1 room meta, 2 viewers, 3 top gifters
-- ARGV: 1 user, 2 how many of the top gifters
-- Returns {} for a room that was never opened, and then writes nothing; else
-- {meta as HGETALL, viewer count, top as ZREVRANGE WITHSCORES}.
local meta = redis.call('HGETALL', KEYS[1])
if #meta == 0 then return {} end
redis.call('HINCRBY', KEYS[2], ARGV[1], 1)
local top = redis.call('ZREVRANGE', KEYS[3], 0, tonumber(ARGV[2]) - 1, 'WITHSCORES')
return {meta, redis.call('HLEN', KEYS[2]), top}
