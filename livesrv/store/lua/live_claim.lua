-- Count a creator's live rooms against the cap. Keys in the creator's shard slot.
-- KEYS: 1 the creator's live rooms (zset: room -> ms of its latest claim)
-- ARGV: 1 action (claim | release | prune), 2 room, 3 cap (claim) or the claim ms that
--       must still stand (prune), 4 now ms (claim)
-- claim: 1 when the room is counted (it already was, or now is), 0 when the cap is reached.
-- release: 1 when the room was counted. prune: release only if nobody claimed it since.
local counted = redis.call('ZSCORE', KEYS[1], ARGV[2])
if ARGV[1] == 'claim' then
  if not counted and redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then return 0 end
  redis.call('ZADD', KEYS[1], ARGV[4], ARGV[2])
  return 1
end
if not counted then return 0 end
if ARGV[1] == 'prune' and tonumber(counted) ~= tonumber(ARGV[3]) then return 0 end
redis.call('ZREM', KEYS[1], ARGV[2])
return 1
