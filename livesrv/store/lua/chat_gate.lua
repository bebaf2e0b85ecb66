-- May this user chat in this room now (moderation)? Keys in the room's slot.
-- KEYS: 1 room meta, 2 moderators (set), 3 banned (set), 4 muted (hash user -> until ms),
--       5 the user's slow-mode mark
-- ARGV: 1 user, 2 apply slow mode ('1' or '0')
-- Returns {status, value}: ok | banned | muted (value: until, unix ms) | slow (value: ms to
-- wait). Slow mode (meta field slow, seconds) spares the creator and the moderators; a
-- chat it lets through sets the user's mark for that long (so one line per window).
--@step clock
local user = ARGV[1]
if redis.call('SISMEMBER', KEYS[3], user) == 1 then return {'banned', 0} end
local now = clock(KEYS, ARGV)
local until_ms = tonumber(redis.call('HGET', KEYS[4], user) or '0')
if until_ms > now then return {'muted', until_ms} end
if until_ms > 0 then redis.call('HDEL', KEYS[4], user) end
if ARGV[2] == '1' then
  local slow = tonumber(redis.call('HGET', KEYS[1], 'slow') or '0')
  if slow > 0 and redis.call('HGET', KEYS[1], 'creator') ~= user
      and redis.call('SISMEMBER', KEYS[2], user) == 0 then
    if not redis.call('SET', KEYS[5], now, 'NX', 'PX', slow * 1000) then
      local wait = redis.call('PTTL', KEYS[5])
      return {'slow', wait > 0 and wait or 1}
    end
  end
end
return {'ok', 0}
