-- Open a treasure box once its time has come (store clock): the split is decided here,
-- exactly once, and kept in the box; a repeat answers the kept split.
-- Split: coins // claimers each; the remainder (coins % claimers) goes one coin each to
-- the earliest claimers; no claimer: everything back to the dropper. Nothing is lost.
-- All keys in the room's slot.
-- KEYS: 1 box hash, 2 claims (zset user -> claim order), 3 open boxes (zset)
-- ARGV: 1 box id
-- Returns {status, split json, dropper, coins}: status none (no such box) | early (not
-- yet) | opened (the split is decided; credits may still be due) | paid (all credited).
-- The split is [[user, coins], ...] in claim order, with %d numbers.
--@step clock
local b = redis.call('HMGET', KEYS[1], 'state', 'opens', 'dropper', 'coins', 'split')
if not b[1] then return {'none', '[]', '', 0} end
local coins = tonumber(b[4])
if b[1] == 'opened' or b[1] == 'paid' then return {b[1], b[5], b[3], coins} end
local now = clock(KEYS, ARGV)
if now < tonumber(b[2]) then return {'early', '[]', b[3], coins} end
local who = redis.call('ZRANGE', KEYS[2], 0, -1)
local parts = {}
if #who == 0 then
  parts[1] = string.format('[%s,%d]', cjson.encode(b[3]), coins)
else
  local share = math.floor(coins / #who)
  local rest = coins - share * #who
  for i, u in ipairs(who) do
    local c = share
    if i <= rest then c = c + 1 end
    parts[i] = string.format('[%s,%d]', cjson.encode(u), c)
  end
end
local split = '[' .. table.concat(parts, ',') .. ']'
redis.call('HSET', KEYS[1], 'state', 'opened', 'split', split, 'claimers', #who)
redis.call('ZREM', KEYS[3], ARGV[1])
return {'opened', split, b[3], coins}
