-- The opening of every keyed money step (spend.lua, sub_pay.lua and sub_gift.lua include it
-- with `--@step keyed`): the key's record first, then the key generation's expiry.
-- KEYS: 2 idempotency record ("args hash\nfirst reply", expiring with its generation)
-- ARGV: 1 args hash, 5 the key generation's expiry (unix ms); ARGV.now (not an argument:
--       a field set by a script including this one) the store's clock in ms
-- Returns the step's reply when it stops here: {'conflict', '', 0} (the key was used with
-- other arguments), {'dup', first reply, expiry ms} or {'expired', '', expiry}; else false.
local prior = redis.call('GET', KEYS[2])
if prior then
  local nl = string.find(prior, '\n', 1, true)
  if string.sub(prior, 1, nl - 1) ~= ARGV[1] then return {'conflict', '', 0} end
  local x = redis.call('PEXPIRETIME', KEYS[2])
  if x < 0 then x = 0 end
  return {'dup', string.sub(prior, nl + 1), x}
end
local exp = tonumber(ARGV[5])
local now = ARGV.now -- the clock (ms) as a caller read it in this same atomic step (gift.lua)
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
if now >= exp then
  return {'expired', '', exp}
end
return false
