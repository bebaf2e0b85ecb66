-- Put a paid treasure box in a room: the second step of box_drop, after the dropper's
-- debit (spend.lua, kind box). Idempotent by box id: the op and the settlement worker
-- (which finishes a drop cut off by a crash) may both run it. All keys in the room's slot.
-- KEYS: 1 room meta, 2 open boxes (zset box -> opening ms), 3 box hash
-- ARGV: 1 box id, 2 dropper, 3 coins, 4 countdown seconds, 5 most open boxes per room
-- Returns {status, state, opens, reason}: status ok | dup; state open (or later states on
-- a repeat), or refund when the room is not live or already has the most open boxes
-- (reason not_live | full: the coins go back to the dropper when the box is opened, at
-- once); opens is the opening time (store clock, unix ms).
--@step clock
if redis.call('EXISTS', KEYS[3]) == 1 then
  local s = redis.call('HMGET', KEYS[3], 'state', 'opens', 'reason')
  return {'dup', s[1], tonumber(s[2]), s[3] or ''}
end
local now = clock(KEYS, ARGV)
local state, opens, reason = 'open', now + tonumber(ARGV[4]) * 1000, ''
if redis.call('HGET', KEYS[1], 'live') ~= '1' then
  state, opens, reason = 'refund', now, 'not_live'
elseif redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[5]) then
  state, opens, reason = 'refund', now, 'full'
else
  redis.call('ZADD', KEYS[2], opens, ARGV[1])
end
redis.call('HSET', KEYS[3], 'dropper', ARGV[2], 'coins', ARGV[3], 'opens', opens,
  'state', state, 'n', 0, 'reason', reason)
return {'ok', state, opens, reason}
