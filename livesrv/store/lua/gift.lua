-- One gift in one atomic step, for a store that is not a cluster (every key is on it):
-- the debit of spend.lua, then, when it moved money, the room event of room_event.lua
-- with the streak (combo) the debit counted. Both steps are the scripts themselves
-- (included below by livesrv/store/scripts.py), so their rules cannot drift apart.
-- A refusal or a retry (dup) returns after the debit step: nothing is logged here, and
-- the caller logs a retried gift's event as in the two-step chain (its event id is that
-- of the first send's key generation).
-- KEYS: spend.lua's (ARGV 1 of them), then room_event.lua's (4, or 10 with the mechanics)
-- ARGV: 1 how many KEYS are spend.lua's, 2 how many ARGV are, 3.. spend.lua's ARGV, then
--       room_event.lua's; its event json (its ARGV 2) has no "combo"
-- Returns spend.lua's {status, reply, expiry}, followed when the debit was ok by
-- room_event.lua's {seq, fresh, reached}.
--@step clock
--@step spend
--@step room_event
local nk, na = tonumber(ARGV[1]), tonumber(ARGV[2])
-- each step's KEYS and ARGV, copied by unpack (in C: a third of a loop's time here)
local sk, ek = {unpack(KEYS, 1, nk)}, {unpack(KEYS, nk + 1)}
local sa, ea = {unpack(ARGV, 3, na + 2)}, {unpack(ARGV, na + 3)}
sa[14] = '1' -- the outbox entry says its event is logged here (settlement skips it)
sa.now = clock(KEYS, ARGV) -- one reading of the clock for both steps
ea.now = sa.now
local r = spend(sk, sa)
if r[1] ~= 'ok' then return r end
ea.fresh = true -- this step's debit was the key's first: room_event.lua skips its lookup
local combo = string.match(r[2], '"combo":(%d+)')
ea[2] = '{"combo":' .. combo .. ',' .. string.sub(ea[2], 2)
local e = room_event(ek, ea)
return {r[1], r[2], r[3], e[1], e[2], e[3] or ''}
