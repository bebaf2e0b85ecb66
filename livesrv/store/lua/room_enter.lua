-- Count a viewer into a room and read what join returns. Keys in the room's slot.
-- KEYS: 1 room meta, 2 presence (sorted set: viewer -> last seen, store clock in ms),
--       3 top gifters
-- ARGV: 1 user, 2 how many of the top gifters, 3 presence ttl ms
-- Returns {} for a room that was never opened, and then writes nothing; else
-- {meta as HGETALL, viewer count (distinct viewers seen within the ttl, on every node),
-- top as ZREVRANGE WITHSCORES}. The viewer's node refreshes the entry while it stays
-- (room_presence.lua).
local meta = redis.call('HGETALL', KEYS[1])
if #meta == 0 then return {} end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[3])
redis.call('ZADD', KEYS[2], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - ttl)
redis.call('PEXPIRE', KEYS[2], ttl)
local top = redis.call('ZREVRANGE', KEYS[3], 0, tonumber(ARGV[2]) - 1, 'WITHSCORES')
return {meta, redis.call('ZCARD', KEYS[2]), top}
