-- A viewer joins a room, in one round trip: the ban check, the moderation state the join
-- reply carries, (when ARGV 4 is '1') the viewer counted in, and the room state join
-- returns (livesrv/services/joining.py). Keys in the room's slot.
-- KEYS: 1 room meta, 2 presence (sorted set: viewer -> last seen, store clock in ms),
--       3 top gifters, 4 banned (set), 5 moderators (set), 6 muted (hash: user -> until ms)
-- ARGV: 1 user, 2 how many of the top gifters, 3 presence ttl ms, 4 '1': count the viewer
--       in (a first join), '0': write nothing (a connection joining again)
-- Returns {'banned'} for a banned user (checked first; nothing is written), {} for a room
-- that was never opened (nothing written); else {meta as HGETALL, viewer count (distinct
-- viewers seen within the ttl, on every node), top as ZREVRANGE WITHSCORES, moderators,
-- the user's muted-until ms or false}. The viewer's node refreshes the presence entry while
-- it stays (room_presence.lua).
--@step clock
if redis.call('SISMEMBER', KEYS[4], ARGV[1]) == 1 then return {'banned'} end
local meta = redis.call('HGETALL', KEYS[1])
if #meta == 0 then return {} end
local now = clock(KEYS, ARGV)
local ttl = tonumber(ARGV[3])
local viewers
if ARGV[4] == '1' then
  redis.call('ZADD', KEYS[2], now, ARGV[1])
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - ttl)
  redis.call('PEXPIRE', KEYS[2], ttl)
  viewers = redis.call('ZCARD', KEYS[2])
else
  viewers = redis.call('ZCOUNT', KEYS[2], '(' .. (now - ttl), '+inf')
end
local top = redis.call('ZREVRANGE', KEYS[3], 0, tonumber(ARGV[2]) - 1, 'WITHSCORES')
local mods = redis.call('SMEMBERS', KEYS[5])
return {meta, viewers, top, mods, redis.call('HGET', KEYS[6], ARGV[1])}
