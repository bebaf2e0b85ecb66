-- A LIVE match's record (issue 13; livesrv/services/match.py): its state machine, in the
-- match's own slot. invited -> running | declined | expired; running -> ended. The end
-- is decided once: the first 'finish' stores the result, every later one returns it.
-- KEYS: 1 match hash
-- ARGV: 1 action, then
--   invite: 2 room a, 3 room b, 4 creator a, 5 creator b, 6 invite ttl ms,
--           7 duration ms, 8 record ttl ms
--   accept: (none) -> {'running', starts, ends, 'fresh' (this call started it)} | {state}
--   decline: -> {state}
--   finish: 2 result json -> {'fresh' | 'dup', result json} | {state}
--   cancel: -> {state}
-- Returns {state, ...}; invite -> {'invited', expires}.
--@step clock
local now = clock(KEYS, ARGV)
local k, action = KEYS[1], ARGV[1]
local f = redis.call('HMGET', k, 'state', 'expires', 'starts', 'ends', 'duration', 'result')
local state = f[1]
if action == 'invite' then
  if state then return {state, tonumber(f[2])} end
  local expires = now + tonumber(ARGV[6])
  redis.call('HSET', k, 'state', 'invited', 'a', ARGV[2], 'b', ARGV[3], 'ca', ARGV[4],
    'cb', ARGV[5], 'expires', expires, 'duration', ARGV[7])
  redis.call('PEXPIRE', k, tonumber(ARGV[8]))
  return {'invited', expires}
end
if not state then return {'none'} end
if state == 'invited' and now >= tonumber(f[2]) then
  state = 'expired'
  redis.call('HSET', k, 'state', state)
end
if action == 'accept' then
  if state == 'invited' then
    local ends = now + tonumber(f[5])
    redis.call('HSET', k, 'state', 'running', 'starts', now, 'ends', ends)
    return {'running', now, ends, 'fresh'}
  end
  if state == 'running' then return {'running', tonumber(f[3]), tonumber(f[4])} end
  return {state}
end
if action == 'decline' then
  if state == 'invited' then
    state = 'declined'
    redis.call('HSET', k, 'state', state)
  end
  return {state}
end
if action == 'cancel' then
  if state == 'invited' or state == 'running' then
    state = 'cancelled'
    redis.call('HSET', k, 'state', state)
  end
  return {state}
end
if action == 'finish' then
  if state == 'running' then
    redis.call('HSET', k, 'state', 'ended', 'result', ARGV[2])
    return {'fresh', ARGV[2]}
  end
  if state == 'ended' then return {'dup', f[6]} end
  return {state}
end
return {state}
