-- The store's clock in unix ms, read at most once per atomic step. Included with
-- `--@step clock` and called as clock(KEYS, ARGV): ARGV.now when the step already has it (a
-- field, not an argument: gift.lua reads the clock once for both of its steps, and a step
-- that asks twice gets its first reading), else TIME, kept in ARGV.now.
if not ARGV.now then
  local t = redis.call('TIME')
  ARGV.now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
return ARGV.now
