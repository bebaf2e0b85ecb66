-- Claim a share of an open treasure box: once per user (a repeat answers the first claim).
-- Claims close at the box's opening time (store clock). All keys in the room's slot.
-- KEYS: 1 box hash, 2 claims (zset user -> claim order 1, 2, ...)
-- ARGV: 1 user, 2 most claimers per box
-- Returns {status, order, claimers}; status ok | dup | not_found | closed | forbidden
-- (the dropper) | full.
--@step clock
local b = redis.call('HMGET', KEYS[1], 'state', 'opens', 'dropper', 'n')
if not b[1] then return {'not_found', 0, 0} end
local n = tonumber(b[4])
local prior = redis.call('ZSCORE', KEYS[2], ARGV[1])
if prior then return {'dup', tonumber(prior), n} end
local now = clock(KEYS, ARGV)
if b[1] ~= 'open' or now >= tonumber(b[2]) then return {'closed', 0, n} end
if b[3] == ARGV[1] then return {'forbidden', 0, n} end
if n >= tonumber(ARGV[2]) then return {'full', 0, n} end
n = redis.call('HINCRBY', KEYS[1], 'n', 1)
redis.call('ZADD', KEYS[2], n, ARGV[1])
return {'ok', n, n}
