-- Remove the settlement consumers of one outbox that hold nothing and have been idle
-- long (the workers of nodes that died or restarted under a new name). Atomic, so a
-- consumer that read entries since the check keeps them: one with pending entries is
-- never removed (its entries are claimed by XAUTOCLAIM first).
-- KEYS: 1 outbox stream
-- ARGV: 1 group, 2 minimum idle ms, 3 the calling consumer (kept)
-- Returns the names removed.
local removed = {}
if redis.call('EXISTS', KEYS[1]) == 0 then return removed end
local ok, consumers = pcall(redis.call, 'XINFO', 'CONSUMERS', KEYS[1], ARGV[1])
if not ok then return removed end
local min_idle = tonumber(ARGV[2])
for _, c in ipairs(consumers) do
  local f = {}
  for i = 1, #c, 2 do f[c[i]] = c[i + 1] end
  if f['name'] ~= ARGV[3] and tonumber(f['pending']) == 0 and tonumber(f['idle']) >= min_idle then
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], f['name'])
    removed[#removed + 1] = f['name']
  end
end
return removed
