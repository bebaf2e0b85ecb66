-- Open or close a room and log room_open / room_closed. Keys in the room's slot.
-- KEYS: 1 room meta, 2 room log, 3 top gifters
-- ARGV: 1 action (open | close), 2 caller, 3 caller is admin ('1'/'0'), 4 title,
--       5 event json (without seq), 6 log maxlen, 7 channel
-- Returns {status, seq, session, creator}; status ok | already | forbidden | not_found |
-- not_live; creator is the room's creator ('' for a room never opened).
local creator = redis.call('HGET', KEYS[1], 'creator')
if ARGV[1] == 'open' then
  if creator and creator ~= ARGV[2] then return {'forbidden', 0, 0, creator} end
  if redis.call('HGET', KEYS[1], 'live') == '1' then
    return {'already', tonumber(redis.call('HGET', KEYS[1], 'seq')),
      tonumber(redis.call('HGET', KEYS[1], 'session')), creator}
  end
  redis.call('HSET', KEYS[1], 'creator', ARGV[2], 'title', ARGV[4], 'live', '1', 'likes', 0)
  redis.call('DEL', KEYS[3])
else
  if not creator then return {'not_found', 0, 0, ''} end
  if creator ~= ARGV[2] and ARGV[3] ~= '1' then return {'forbidden', 0, 0, creator} end
  if redis.call('HGET', KEYS[1], 'live') ~= '1' then return {'not_live', 0, 0, creator} end
  redis.call('HSET', KEYS[1], 'live', '0')
end
local session = tonumber(redis.call('HGET', KEYS[1], 'session') or '0')
if ARGV[1] == 'open' then session = redis.call('HINCRBY', KEYS[1], 'session', 1) end
local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
local s = string.format('{"seq":%d,', seq) .. string.sub(ARGV[5], 2) -- no cjson numbers
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[6], string.format('%d-0', seq), 'e', s)
redis.call('SPUBLISH', ARGV[7], s)
return {'ok', seq, session, redis.call('HGET', KEYS[1], 'creator')}
