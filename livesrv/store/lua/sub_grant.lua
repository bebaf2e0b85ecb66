-- Grant one gifted subscription period to its recipient: one step in the recipient's slot,
-- once per gift ref (the record keeps "g:REF" forever, with what the grant made). The
-- period runs from now, or from the end of a running subscription, which then keeps the
-- higher of its tier and the gifted one (services/sub_rules.py grant()).
-- KEYS: 1 subscription end (unix s, string), 2 subscription record (hash)
-- ARGV: 1 gift ref, 2 gifted tier, 3 its price, 4 period (s)
-- Returns "until|months|tier": this grant's result (the first one's, on a repeat).
--@step clock
local done = redis.call('HGET', KEYS[2], 'g:' .. ARGV[1])
if done then return done end
local now = math.floor(clock(KEYS, ARGV) / 1000)
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
local r = redis.call('HMGET', KEYS[2], 'tier', 'price')
local tier, price = tonumber(ARGV[2]), ARGV[3]
local base = now
if cur > now then
  base = cur
  local held = tonumber(r[1] or '1')
  if held >= tier then tier, price = held, r[2] or '0' end
end
local untl = base + tonumber(ARGV[4])
redis.call('SET', KEYS[1], untl)
redis.call('EXPIREAT', KEYS[1], untl + 86400)
redis.call('HSET', KEYS[2], 'tier', tier, 'price', price)
local months = redis.call('HINCRBY', KEYS[2], 'months', 1)
local out = string.format('%d|%d|%d', untl, months, tier)
redis.call('HSET', KEYS[2], 'g:' .. ARGV[1], out)
return out
