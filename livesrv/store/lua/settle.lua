-- Credit an earner's diamonds for one settlement entry, exactly once.
-- Per earner and kind: credited = floor(coins earned x bps / 10000); remainders carry.
-- A clawback entry (services/refunds.py) has negative coins, so its delta is negative: it
-- takes from pending first (the latest-maturing holds), then available, then below zero.
-- KEYS: 1 earner wallet, 2 applied refs (set), 3 ledger, 4 earner holds (zset),
--       5 shard hold queue (zset), 6 shard users set
-- ARGV: 1 ref, 2 kind ("gift:5000"), 3 coins, 4 bps, 5 hold ms, 6 now ms, 7 earner,
--       8 wallet channel, 9 '0': do not publish the wallet (settle_batch.lua publishes
--       each wallet once, after all of its credits); ARGV.holds (a field, set by
--       settle_batch.lua): where a credit's hold goes instead of its own member (below)
-- Holds: each is a member "ref|diamonds" of the earner's holds, scored by when it matures.
--@step wallet_publish
-- Returns {fresh, delta}; {-1, 0} when the earner's totals would pass 2^53 - 1, the
-- largest exact integer (nothing moves; the entry stays unsettled).
-- One read of the earner's wallet and, for a credit, one write of it: every total stays below
-- 2^53, so the sums are exact here, and they are written with %d.
if redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 1 then return {0, 0} end
local MAX = 9007199254740991
local bps = tonumber(ARGV[4])
local coins = tonumber(ARGV[3])
local ek, ck = 'e:' .. ARGV[2], 'c:' .. ARGV[2]
local w = redis.call('HMGET', KEYS[1], ek, ck, 'credited', 'diamonds', 'pending')
local earned = tonumber(w[1] or '0')
if coins > MAX - earned then return {-1, 0} end
earned = earned + coins
local target = math.floor(earned / 10000) * bps + math.floor((earned % 10000) * bps / 10000)
local delta = target - tonumber(w[2] or '0')
local credited = tonumber(w[3] or '0')
if delta > MAX - credited then return {-1, 0} end
redis.call('SADD', KEYS[2], ARGV[1])
local fmt = string.format
local totals = {ek, fmt('%d', earned), ck, fmt('%d', target),
  'credited', fmt('%d', credited + delta)}
local hold, now = tonumber(ARGV[5]), tonumber(ARGV[6])
local split = {}
if delta < 0 then
  if ARGV.holds then ARGV.holds.flush(KEYS[4]) end -- the batch's held credits first
  redis.call('HSET', KEYS[1], unpack(totals))
  local p = math.min(-delta, tonumber(w[5] or '0'))
  if p < 0 then p = 0 end
  local left = p
  while left > 0 do
    local top = redis.call('ZREVRANGE', KEYS[4], 0, 0, 'WITHSCORES')
    if #top == 0 then break end
    local ref, n = string.match(top[1], '^(.*)|(%d+)$')
    n = tonumber(n)
    redis.call('ZREM', KEYS[4], top[1])
    if n > left then
      redis.call('ZADD', KEYS[4], top[2], string.format('%s|%d', ref, n - left))
      n = left
    end
    left = left - n
  end
  p = p - left
  redis.call('HINCRBY', KEYS[1], 'pending', -p)
  redis.call('HINCRBY', KEYS[1], 'diamonds', delta + p)
  split = {'pending', -p}
else
  if delta > 0 and hold <= 0 then
    totals[7], totals[8] = 'diamonds', fmt('%d', tonumber(w[4] or '0') + delta)
  elseif delta > 0 then
    totals[7], totals[8] = 'pending', fmt('%d', tonumber(w[5] or '0') + delta)
    local function write_hold(holds, queue, earner, due, ref, n)
      redis.call('ZADD', holds, due, fmt('%s|%d', ref, n))
      -- LT keeps the earliest maturity and still adds a new member
      redis.call('ZADD', queue, 'LT', due, earner)
    end
    -- settle_batch.lua gathers an earner's holds of one batch and writes them as one
    local write = ARGV.holds and ARGV.holds.add or write_hold
    write(KEYS[4], KEYS[5], ARGV[7], now + hold, ARGV[1], delta, write_hold)
  end
  redis.call('HSET', KEYS[1], unpack(totals))
end
redis.call('XADD', KEYS[3], '*', 't', 'settle', 'kind', ARGV[2], 'user', ARGV[7],
  'coins', ARGV[3], 'diamonds', delta, 'ref', ARGV[1], 'ts', now, unpack(split))
redis.call('SADD', KEYS[6], ARGV[7])
if ARGV[9] ~= '0' then wallet_publish({KEYS[1]}, {ARGV[8], ARGV[7]}) end
return {1, delta}
