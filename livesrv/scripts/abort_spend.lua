-- Close an abandoned keyed spend so that it can never debit later: if the key has no
-- record yet, write a tombstone. Keys in the payer's slot.
-- KEYS: 1 idempotency record. ARGV: 1 ttl s
-- Returns 'aborted' when the tombstone was written, 'done' when the spend had happened.
local prior = redis.call('GET', KEYS[1])
if prior then
  if string.sub(prior, 1, 8) == '!aborted' then return 'aborted' end
  return 'done'
end
redis.call('SET', KEYS[1], '!aborted\n{}', 'EX', tonumber(ARGV[1]))
return 'aborted'
