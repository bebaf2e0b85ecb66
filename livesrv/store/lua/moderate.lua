-- Apply one moderation action to a room (who may act is checked before, by the service:
-- livesrv/services/modrules.py). Keys in the room's slot.
-- KEYS: 1 room meta, 2 moderators (set), 3 banned (set), 4 muted (hash user -> until ms),
--       5 deleted chat seqs (sorted set, score = seq), 6 room log stream
-- ARGV: 1 action (mod_add | mod_remove | mute | ban | unban | chat_delete | slow_mode),
--       2 target user ('' for none), 3 value (mute / slow mode seconds, or the chat seq),
--       4 most moderators a room may have, 5 most deleted seqs kept (the log's length)
-- Returns {status, value}: status ok | dup (nothing changed) | not_found (no such room) |
-- no_chat (no chat line with that seq in the log) | full (moderator cap reached);
-- value: mute -> until (unix ms, 0 when unmuted), slow_mode -> seconds, else 0.
--@step clock
if redis.call('EXISTS', KEYS[1]) == 0 then return {'not_found', 0} end
local action, user, value = ARGV[1], ARGV[2], tonumber(ARGV[3])
if action == 'mod_add' then
  if redis.call('SISMEMBER', KEYS[2], user) == 1 then return {'dup', 0} end
  if redis.call('SCARD', KEYS[2]) >= tonumber(ARGV[4]) then return {'full', 0} end
  redis.call('SADD', KEYS[2], user)
  return {'ok', 0}
elseif action == 'mod_remove' then
  if redis.call('SREM', KEYS[2], user) == 0 then return {'dup', 0} end
  return {'ok', 0}
elseif action == 'mute' then
  if value <= 0 then
    if redis.call('HDEL', KEYS[4], user) == 0 then return {'dup', 0} end
    return {'ok', 0}
  end
  local until_ms = clock(KEYS, ARGV) + value * 1000
  redis.call('HSET', KEYS[4], user, until_ms)
  return {'ok', until_ms}
elseif action == 'ban' then
  redis.call('SREM', KEYS[2], user)  -- a banned moderator is a moderator no more
  redis.call('HDEL', KEYS[4], user)
  if redis.call('SADD', KEYS[3], user) == 0 then return {'dup', 0} end
  return {'ok', 0}
elseif action == 'unban' then
  if redis.call('SREM', KEYS[3], user) == 0 then return {'dup', 0} end
  return {'ok', 0}
elseif action == 'chat_delete' then
  local id = string.format('%d-0', value)
  local rows = redis.call('XRANGE', KEYS[6], id, id)
  if #rows == 0 then return {'no_chat', 0} end
  local fields = rows[1][2]
  local ev = nil
  for i = 1, #fields, 2 do
    if fields[i] == 'e' then ev = cjson.decode(fields[i + 1]) end
  end
  if not ev or ev['ev'] ~= 'chat' then return {'no_chat', 0} end
  if redis.call('ZADD', KEYS[5], 'NX', value, value) == 0 then return {'dup', 0} end
  local over = redis.call('ZCARD', KEYS[5]) - tonumber(ARGV[5])
  if over > 0 then redis.call('ZREMRANGEBYRANK', KEYS[5], 0, over - 1) end
  return {'ok', 0}
elseif action == 'slow_mode' then
  local was = tonumber(redis.call('HGET', KEYS[1], 'slow') or '0')
  if was == value then return {'dup', value} end
  if value <= 0 then redis.call('HDEL', KEYS[1], 'slow') else redis.call('HSET', KEYS[1], 'slow', value) end
  return {'ok', value}
end
return redis.error_reply('unknown moderation action ' .. action)
