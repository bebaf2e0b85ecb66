-- Flag an account as a minor, once: from then spend.lua refuses its spends ('minor'), and
-- its spends since ARGV[2] - ARGV[3] are reversed (reverse.lua). The first flag stays.
-- KEYS: 1 wallet, 2 ledger, 3 shard users set
-- ARGV: 1 user, 2 now ms, 3 refund window ms
-- Returns {status, flagged ms, window start ms}; status ok (flagged now) | dup.
local at = redis.call('HMGET', KEYS[1], 'minor', 'minor_from')
if at[1] then return {'dup', at[1], at[2]} end
local now = tonumber(ARGV[2])
local from = now - tonumber(ARGV[3])
redis.call('HSET', KEYS[1], 'minor', now, 'minor_from', from)
redis.call('XADD', KEYS[2], '*', 't', 'minor', 'user', ARGV[1], 'from', from, 'ts', now)
redis.call('SADD', KEYS[3], ARGV[1])
return {'ok', string.format('%d', now), string.format('%d', from)}
