-- Close an abandoned keyed purchase so that it can never debit later: if the key has no
-- record yet, write a tombstone that dies with the key generation. Keys in the payer's slot.
-- KEYS: 1 idempotency record. ARGV: 1 the key generation's expiry (unix ms), 2 args hash
-- Returns 'done' when the purchase's spend happened, 'aborted' when it never can (the
-- tombstone was written, or the key holds another request), 'expired' when the generation
-- is over and its record gone (the spend can no longer happen; whether it did, settlement
-- knows: it marks every paid reservation sold).
--@step clock
local prior = redis.call('GET', KEYS[1])
if prior then
  local nl = string.find(prior, '\n', 1, true)
  if string.sub(prior, 1, nl - 1) == ARGV[2] then return 'done' end
  return 'aborted'
end
local x = tonumber(ARGV[1])
if clock(KEYS, ARGV) >= x then return 'expired' end
redis.call('SET', KEYS[1], '!aborted\n{}', 'PXAT', x)
return 'aborted'
