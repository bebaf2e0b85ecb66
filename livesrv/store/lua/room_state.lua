-- Open or close a room and log room_open / room_closed. Keys in the room's slot.
-- KEYS: 1 room meta, 2 room log, 3 top gifters
-- ARGV: 1 action (open | close), 2 caller, 3 caller is admin ('1'/'0'), 4 title,
--       5 event json (without seq), 6 log maxlen, 7 channel, 8 fence ('1' or '0')
-- Returns {status, seq, session, creator}; status ok | already | forbidden | not_found |
-- not_live; creator is the room's creator ('' for a room never opened).
-- Fence (ARGV[8] '1', once per room per store connection of a node): when this master
-- may not hold the room's last logged events (it is the replica promoted in place of the
-- master that logged them, or the same node restarted), those events may be lost, and
-- their seqs must never name other events: the seq jumps by 1,000,000, so a client that
-- saw them is told gap: true on join since. A slot migrated to another master (MIGRATE
-- moves keys whole) keeps its seq.
local function whoami()
  local info = redis.call('INFO', 'replication')
  local ok, node = pcall(redis.call, 'CLUSTER', 'MYID')
  return string.match(info, 'master_replid:(%w+)'), string.match(info, 'master_replid2:(%w+)'),
    ok and node or ''
end
if ARGV[8] == '1' and redis.call('EXISTS', KEYS[1]) == 1 then
  local id, id2, node = whoami()
  local was = redis.call('HMGET', KEYS[1], 'replid', 'node')
  if was[1] ~= id then
    if was[1] and (was[1] == id2 or was[2] == node) then
      redis.call('HINCRBY', KEYS[1], 'seq', 1000000)
    end
    redis.call('HSET', KEYS[1], 'replid', id, 'node', node)
  end
end
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
if seq == 1 then
  local id, _, node = whoami()
  redis.call('HSET', KEYS[1], 'replid', id, 'node', node)
end
local s = string.format('{"seq":%d,', seq) .. string.sub(ARGV[5], 2) -- no cjson numbers
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[6], string.format('%d-0', seq), 'e', s)
redis.call('SPUBLISH', ARGV[7], s)
return {'ok', seq, session, redis.call('HGET', KEYS[1], 'creator')}
