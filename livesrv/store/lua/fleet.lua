-- Record this node's fleet agreements where the fleet has none yet, and read the record.
-- KEYS: 1 the fleet record (hash)
-- ARGV: 1 n, then n field, value pairs that must agree, then field, value pairs of
--       metadata (who wrote the record, when; never compared)
-- A field already recorded keeps its value; when any recorded agreement differs from
-- this node's, nothing is written. Returns the record as HGETALL; the caller compares
-- (livesrv/fleet.py) and names what differs.
local n = tonumber(ARGV[1])
for i = 2, 2 * n, 2 do
  local v = redis.call('HGET', KEYS[1], ARGV[i])
  if v and v ~= ARGV[i + 1] then return redis.call('HGETALL', KEYS[1]) end
end
for i = 2, #ARGV, 2 do
  redis.call('HSETNX', KEYS[1], ARGV[i], ARGV[i + 1])
end
return redis.call('HGETALL', KEYS[1])
