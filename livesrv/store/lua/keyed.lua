-- The opening of every keyed money step (spend.lua, sub_pay.lua and sub_gift.lua include it
-- with `--@step keyed`): the key's record first, then the key generation's expiry.
-- KEYS: 2 idempotency record ("args hash\nfirst reply", expiring with its generation)
-- ARGV: 1 args hash, 5 the key generation's expiry (unix ms); ARGV.now the store's clock
--       in ms, when the including script read it (clock.lua)
-- Returns the step's reply when it stops here: {'conflict', '', 0} (the key was used with
-- other arguments), {'dup', first reply, expiry ms} or {'expired', '', expiry}; else false.
--@step clock
local prior = redis.call('GET', KEYS[2])
if prior then
  local nl = string.find(prior, '\n', 1, true)
  if string.sub(prior, 1, nl - 1) ~= ARGV[1] then return {'conflict', '', 0} end
  local x = redis.call('PEXPIRETIME', KEYS[2])
  if x < 0 then x = 0 end
  return {'dup', string.sub(prior, nl + 1), x}
end
local exp = tonumber(ARGV[5])
if clock(KEYS, ARGV) >= exp then
  return {'expired', '', exp}
end
return false
