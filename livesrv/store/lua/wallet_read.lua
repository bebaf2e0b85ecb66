-- A user's balances, after moving any matured holds to available diamonds: release.lua
-- (included below by livesrv/store/scripts.py), then the wallet read, in one round trip.
-- KEYS, ARGV: release.lua's (1 wallet, 2 holds, 3 shard hold queue, 4 ledger;
--       1 now ms, 2 user, 3 wallet channel)
-- Returns {coins, diamonds, pending} as HMGET (false for a field never set).
--@step release
release(KEYS, ARGV)
return redis.call('HMGET', KEYS[1], 'coins', 'diamonds', 'pending')
