-- Claim a payment receipt id for one user and package; an id is claimed once, for anyone
-- (a receipt re-signed at another time has the same id).
-- KEYS: 1 receipt id record. ARGV: 1 owner ("user|package"), 2 now ms
-- Returns 'ok' when this owner holds the claim (now or from before), else the other owner.
local owner = redis.call('GET', KEYS[1])
if not owner then
  redis.call('SET', KEYS[1], ARGV[1])
  return 'ok'
end
if owner == ARGV[1] then return 'ok' end
return owner
