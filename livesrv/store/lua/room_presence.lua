-- Refresh this node's viewers of one room and count the room's viewers on every node.
-- KEYS: 1 room meta, 2 presence (sorted set: viewer -> last seen, store clock in ms)
-- ARGV: 1 presence ttl ms, 2.. the viewers this node has in the room
-- A viewer counts while seen within the ttl; older entries are trimmed here, and the set
-- expires a ttl after the last refresh of any node. Returns the viewer count; -1 for a
-- room that does not exist, and then writes nothing.
--@step clock
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local now = clock(KEYS, ARGV)
local ttl = tonumber(ARGV[1])
local batch = {}
for i = 2, #ARGV do
  batch[#batch + 1] = now
  batch[#batch + 1] = ARGV[i]
  if #batch >= 512 or i == #ARGV then
    redis.call('ZADD', KEYS[2], unpack(batch))
    batch = {}
  end
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - ttl)
if #ARGV > 1 then redis.call('PEXPIRE', KEYS[2], ttl) end
return redis.call('ZCARD', KEYS[2])
