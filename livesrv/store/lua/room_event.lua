-- Append one logged event to a room: next seq, log stream, room channel. Idempotent by
-- event id (a retried gift logs once). All keys are in the room's slot.
-- KEYS: 1 room meta, 2 room log stream, 3 event id record (may be a dummy when no id),
--       4 top gifters (zset)
-- ARGV: 1 event id ('' for none), 2 event json (without seq), 3 log maxlen,
--       4 top user ('' for none), 5 top coins, 6 require live ('1' or '0'), 7 channel,
--       8 room meta field to set with the event ('' for none), 9 its value,
--       10 expiry (unix ms) of the key generation the event id belongs to ('0': 2 days),
--       11 fence ('1' or '0', see below)
-- Returns {seq, fresh}: fresh 0 when the event id was logged before; {-1, 0} not live;
-- {-2, 0} the event id's generation is over (its record is gone, so it is never logged:
-- logging it again could repeat it). The event json is spliced, never re-encoded by cjson.
-- Fence (ARGV[11] '1', once per room per store connection of a node): when this master
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
if ARGV[11] == '1' and redis.call('EXISTS', KEYS[1]) == 1 then
  local id, id2, node = whoami()
  local was = redis.call('HMGET', KEYS[1], 'replid', 'node')
  if was[1] ~= id then
    if was[1] and (was[1] == id2 or was[2] == node) then
      redis.call('HINCRBY', KEYS[1], 'seq', 1000000)
    end
    redis.call('HSET', KEYS[1], 'replid', id, 'node', node)
  end
end
local exp = tonumber(ARGV[10] or '0')
if ARGV[1] ~= '' then
  local s = redis.call('GET', KEYS[3])
  if s then return {tonumber(s), 0} end
  local t = redis.call('TIME')
  if exp > 0 and tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) >= exp then
    return {-2, 0}
  end
end
if ARGV[6] == '1' and redis.call('HGET', KEYS[1], 'live') ~= '1' then return {-1, 0} end
local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
if seq == 1 then
  local id, _, node = whoami()
  redis.call('HSET', KEYS[1], 'replid', id, 'node', node)
end
local s = string.format('{"seq":%d,', seq) .. string.sub(ARGV[2], 2)
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], string.format('%d-0', seq), 'e', s)
if ARGV[1] ~= '' then
  if exp > 0 then
    redis.call('SET', KEYS[3], seq, 'PXAT', exp)
  else
    redis.call('SET', KEYS[3], seq, 'EX', 172800)
  end
end
if ARGV[8] ~= '' then redis.call('HSET', KEYS[1], ARGV[8], ARGV[9]) end
if ARGV[4] ~= '' then redis.call('ZINCRBY', KEYS[4], tonumber(ARGV[5]), ARGV[4]) end
redis.call('SPUBLISH', ARGV[7], s)
return {seq, 1}
