-- Mark a claimed receipt reversed (refunded or charged back): step 1 of a refund, in the
-- receipt id's shard. A receipt is reversed at most once: the first kind stays.
-- KEYS: 1 receipt claim record, 2 receipt reversal record (hash)
-- ARGV: 1 kind (refund | chargeback), 2 reason, 3 now ms, 4 coins, 5 the claim ("user|package")
-- Returns {status, kind, coins}; status ok (marked now) | dup (marked before: its kind and
-- coins) | changed (the claim is not ARGV[5]: nothing written).
local first = redis.call('HMGET', KEYS[2], 'kind', 'coins')
if first[1] then return {'dup', first[1], first[2]} end
if redis.call('GET', KEYS[1]) ~= ARGV[5] then return {'changed', '', '0'} end
local user, package = string.match(ARGV[5], '^(.*)|(.*)$')
redis.call('HSET', KEYS[2], 'kind', ARGV[1], 'reason', ARGV[2], 'ts', ARGV[3],
  'coins', ARGV[4], 'user', user, 'package', package)
return {'ok', ARGV[1], ARGV[4]}
