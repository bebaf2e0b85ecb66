-- One room's side of a LIVE match (issue 13; livesrv/services/match.py). Gifts are counted
-- into the side by room_event.lua; this script claims, releases and freezes it. All keys
-- in the room's slot.
-- KEYS: 1 side hash, 2 supporters zset, 3 room meta
-- ARGV: 1 action ('claim' | 'release' | 'freeze'), 2 match id,
--       claim: 3 other room, 4 start ms, 5 end ms; freeze: 3 top supporters to name
-- claim -> 'ok' | 'busy' (another match is running here) | 'not_live'
-- release -> 'ok' (the side is removed if it is this match's and nothing was scored)
-- freeze -> {score, flat top [user, points, ...]}: from now on nothing counts (the end is
-- the earlier of now and the timer); {-1, {}} when the side is another match's.
--@step clock
local now = clock(KEYS, ARGV)
local cur = redis.call('HMGET', KEYS[1], 'id', 'ends', 'ended')
local action, id = ARGV[1], ARGV[2]
if action == 'claim' then
  if cur[1] == id then return 'ok' end
  if redis.call('HGET', KEYS[3], 'live') ~= '1' then return 'not_live' end
  if cur[1] and cur[3] ~= '1' and now < tonumber(cur[2]) then return 'busy' end
  redis.call('DEL', KEYS[1], KEYS[2])
  redis.call('HSET', KEYS[1], 'id', id, 'other', ARGV[3], 'start', ARGV[4], 'ends', ARGV[5],
    'score', 0, 'boost', 0, 'ended', 0)
  return 'ok'
end
if cur[1] ~= id then
  if action == 'freeze' then return {-1, {}} end
  return 'ok'
end
if action == 'release' then
  if cur[3] ~= '1' and tonumber(redis.call('HGET', KEYS[1], 'score') or '0') == 0 then
    redis.call('DEL', KEYS[1], KEYS[2])
  end
  return 'ok'
end
if cur[3] ~= '1' then
  redis.call('HSET', KEYS[1], 'ended', 1, 'ends', math.min(now, tonumber(cur[2])))
end
local score = tonumber(redis.call('HGET', KEYS[1], 'score') or '0')
return {score, redis.call('ZREVRANGE', KEYS[2], 0, tonumber(ARGV[3]) - 1, 'WITHSCORES')}
