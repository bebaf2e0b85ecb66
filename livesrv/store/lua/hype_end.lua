-- End a room's hype train whose countdown ran out (issue 13; livesrv/services/goals.py).
-- The end is recorded once, with its payload; every later call returns that payload
-- while the train is cooling down, so the caller logs it (idempotent by the event id
-- "h:ROOM:N:end") even after a crash between the two steps. All keys in the room's slot.
-- KEYS: 1 hype train hash, 2 hype contributors zset
-- ARGV: 1 cooldown ms, 2 top contributors to name
-- Returns {payload, fresh}: payload '' (running, or no train) or the hype_end event fields
-- as JSON (n, level, total, top); fresh 1 when this call ended the train, else 0.
--@step clock
local h = redis.call('HMGET', KEYS[1], 'state', 'ends', 'n', 'level', 'total', 'endev')
local now = clock(KEYS, ARGV)
if h[1] == 'cool' then return {h[6] or '', 0} end
if h[1] ~= 'run' or now < tonumber(h[2]) then return {'', 0} end
local rows = redis.call('ZREVRANGE', KEYS[2], 0, tonumber(ARGV[2]) - 1, 'WITHSCORES')
local top = {}
for i = 1, #rows, 2 do
  top[#top + 1] = string.format('["%s",%d]', rows[i], tonumber(rows[i + 1]))
end
local ev = string.format('{"train":%d,"level":%d,"total":%d,"top":[%s]}',
  tonumber(h[3]), tonumber(h[4] or '0'), tonumber(h[5] or '0'), table.concat(top, ','))
redis.call('HSET', KEYS[1], 'state', 'cool', 'cool', tonumber(h[2]) + tonumber(ARGV[1]),
  'endev', ev)
return {ev, 1}
