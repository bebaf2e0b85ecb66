-- Read one viewer's subscription to one creator (read only; keys in the viewer's slot).
-- KEYS: 1 subscribed-until (string, unix s), 2 subscription record (hash)
-- Returns {until or false, tier, price, months} (HMGET of the record: false when unset).
local r = redis.call('HMGET', KEYS[2], 'tier', 'price', 'months')
return {redis.call('GET', KEYS[1]), r[1], r[2], r[3]}
