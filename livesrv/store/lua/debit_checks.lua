-- The checks of every debit of coins, after keyed.lua's (spend.lua, sub_pay.lua and
-- sub_gift.lua include it with `--@step debit_checks`), in this order: the minor flag, the
-- funds, then the daily cap over the rolling-day spend window. The caller reads the wallet
-- (one HMGET, with the other fields its debit needs) and passes what it read: nothing here
-- reads the wallet again. Only the window is touched: spends older than a day leave it, and
-- the wallet's running day total drops by their amounts (written even when the cap refuses).
-- KEYS: 1 wallet, 5 rolling-day spend window (zset: members "key|generation|amount", scored
--       by time ms)
-- ARGV (a table the caller builds): 1 amount, 2 now ms, 3 day limit, 4 the wallet as read
--       (HMGET 'coins', 'minor', 'day', then any fields of the caller's)
-- Returns the step's reply when it stops here: {'minor', '', 0} (the account is flagged a
-- minor), {'insufficient', coins, 0} (coins below zero when a refund took back coins already
-- spent) or {'limit', spent in the window, 0}; else false and the window's total before this
-- debit (the caller writes that total plus its amount to the wallet's 'day').
local amount = tonumber(ARGV[1])
local w = ARGV[4]
local coins = tonumber(w[1] or '0')
if w[2] then return {'minor', '', 0} end
if coins < amount then return {'insufficient', string.format('%d', coins), 0} end
local day = tonumber(w[3] or '0')
local cutoff = tonumber(ARGV[2]) - 86400000
-- One read of the window's oldest spend. None: the window expired after a quiet day, and
-- its running total goes with it. Younger than a day: nothing leaves the window.
local oldest = redis.call('ZRANGE', KEYS[5], 0, 0, 'WITHSCORES')
if #oldest == 0 then
  day = 0
elseif tonumber(oldest[2]) <= cutoff then
  for _, m in ipairs(redis.call('ZRANGEBYSCORE', KEYS[5], '-inf', cutoff)) do
    day = day - tonumber(string.match(m, '|(%d+)$'))
  end
  redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', cutoff)
  redis.call('HSET', KEYS[1], 'day', day)
end
if day + amount > tonumber(ARGV[3]) then return {'limit', string.format('%d', day), 0} end
return false, day
