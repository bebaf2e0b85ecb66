-- Append one logged event to a room: next seq, log stream, room channel. Idempotent by
-- event id (a retried gift logs once). All keys are in the room's slot.
-- KEYS: 1 room meta, 2 room log stream, 3 event id record (may be a dummy when no id),
--       4 top gifters (zset)
-- ARGV: 1 event id ('' for none), 2 event json (without seq), 3 log maxlen,
--       4 top user ('' for none), 5 top coins, 6 require live ('1' or '0'), 7 channel,
--       8 room meta field to set with the event ('' for none), 9 its value
-- Returns {seq, fresh}: fresh 0 when the event id was logged before; {-1, 0} not live.
if ARGV[1] ~= '' then
  local s = redis.call('GET', KEYS[3])
  if s then return {tonumber(s), 0} end
end
if ARGV[6] == '1' and redis.call('HGET', KEYS[1], 'live') ~= '1' then return {-1, 0} end
local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
local ev = cjson.decode(ARGV[2])
ev['seq'] = seq
local s = cjson.encode(ev)
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], seq .. '-0', 'e', s)
if ARGV[1] ~= '' then redis.call('SET', KEYS[3], seq, 'EX', 172800) end
if ARGV[8] ~= '' then redis.call('HSET', KEYS[1], ARGV[8], ARGV[9]) end
if ARGV[4] ~= '' then redis.call('ZINCRBY', KEYS[4], tonumber(ARGV[5]), ARGV[4]) end
redis.call('PUBLISH', ARGV[7], s)
return {seq, 1}
