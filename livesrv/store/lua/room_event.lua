-- Append one logged event to a room: next seq, log stream, room channel. Idempotent by
-- event id (a retried gift logs once). All keys are in the room's slot.
-- KEYS: 1 room meta, 2 room log stream, 3 event id record (may be a dummy when no id),
--       4 top gifters (zset)
-- ARGV: 1 event id ('' for none), 2 event json (without seq), 3 log maxlen,
--       4 top user ('' for none), 5 top coins, 6 require live ('1' or '0'), 7 channel,
--       8 room meta field to set with the event ('' for none), 9 its value,
--       10 expiry (unix ms) of the key generation the event id belongs to ('0': 2 days),
--       11 fence ('1' or '0', see below)
--       ARGV.now the store's clock in ms, when the including script read it (clock.lua)
-- Returns {seq, fresh[, reached]}: fresh 0 when the event id was logged before (reached: the
-- kind of the goal this event reached, '' for none); {-1, 0} not live;
-- {-2, 0} the event id's generation is over (its record is gone, so it is never logged:
-- logging it again could repeat it). The event json is spliced, never re-encoded by cjson.
-- Fence (ARGV[11] '1', once per room per store connection of a node): when this master
-- may not hold the room's last logged events (it is the replica promoted in place of the
-- master that logged them, or the same node restarted), those events may be lost, and
-- their seqs must never name other events: the seq jumps by 1,000,000, so a client that
-- saw them is told gap: true on join since. A slot migrated to another master (MIGRATE
-- moves keys whole) keeps its seq.
--@step clock
local function whoami()
  local info = redis.call('INFO', 'replication')
  local ok, node = pcall(redis.call, 'CLUSTER', 'MYID')
  return string.match(info, 'master_replid:(%w+)'), string.match(info, 'master_replid2:(%w+)'),
    ok and node or ''
end
if ARGV[11] == '1' and redis.call('EXISTS', KEYS[1]) == 1 then
  local id, id2, node = whoami()
  local was = redis.call('HMGET', KEYS[1], 'replid', 'node')
  if was[1] ~= id then
    if was[1] and (was[1] == id2 or was[2] == node) then
      redis.call('HINCRBY', KEYS[1], 'seq', 1000000)
    end
    redis.call('HSET', KEYS[1], 'replid', id, 'node', node)
  end
end
local exp = tonumber(ARGV[10] or '0')
-- ARGV.fresh (a field, set by gift.lua): the debit in this same atomic step was the key
-- generation's first, before its expiry, so its event cannot be logged yet: no lookup
if ARGV[1] ~= '' and not ARGV.fresh then
  local s = redis.call('GET', KEYS[3])
  if s then return {tonumber(s), 0} end
  if exp > 0 and clock(KEYS, ARGV) >= exp then
    return {-2, 0}
  end
end
if ARGV[6] == '1' and redis.call('HGET', KEYS[1], 'live') ~= '1' then return {-1, 0} end
local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
if seq == 1 then
  local id, _, node = whoami()
  redis.call('HSET', KEYS[1], 'replid', id, 'node', node)
end
local s = string.format('{"seq":%d,', seq) .. string.sub(ARGV[2], 2)
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], string.format('%d-0', seq), 'e', s)
if ARGV[1] ~= '' then
  if exp > 0 then
    redis.call('SET', KEYS[3], seq, 'PXAT', exp)
  else
    redis.call('SET', KEYS[3], seq, 'EX', 172800)
  end
end
if ARGV[8] ~= '' then redis.call('HSET', KEYS[1], ARGV[8], ARGV[9]) end
if ARGV[4] ~= '' then redis.call('ZINCRBY', KEYS[4], tonumber(ARGV[5]), ARGV[4]) end
redis.call('SPUBLISH', ARGV[7], s)
-- Live mechanics (issue 13; the rules are stated in livesrv/services/live_rules.py): when
-- KEYS 5-10 are given, a fresh gift or subscription is counted here, in the step that
-- logs it, so a retried or re-logged one counts exactly once.
-- KEYS: 5 match side hash, 6 match supporters zset, 7 goal hash, 8 hype train hash,
--       9 hype recent gifters zset, 10 hype contributors zset
-- ARGV: 12 'gift' | 'sub' | '', 13 user, 14 coins, 15 gift, 16 count, 17 booster window
--       ms (0: not a booster), 18 hype viewers, 19 hype window ms, 20 hype countdown ms,
--       21 hype cooldown ms, 22 hype thresholds (cumulative coins, comma-separated), 23 room
local reached = ''
if #KEYS >= 10 and ARGV[12] ~= '' then
  local now = clock(KEYS, ARGV)
  local kind, user, coins, room = ARGV[12], ARGV[13], tonumber(ARGV[14]), ARGV[23]
  local function emit(body, logged)  -- body: the event's fields as JSON, without braces
    if logged then
      local q = redis.call('HINCRBY', KEYS[1], 'seq', 1)
      local e = string.format('{"seq":%d,%s,"ts":%d}', q, body, now)
      redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], string.format('%d-0', q), 'e', e)
      redis.call('SPUBLISH', ARGV[7], e)
    else
      redis.call('SPUBLISH', ARGV[7], string.format('{%s,"ts":%d}', body, now))
    end
  end
  -- match: the side's points (x2 inside a booster window; windows queue)
  local m = redis.call('HMGET', KEYS[5], 'start', 'ends', 'ended', 'boost')
  if kind == 'gift' and m[1] and m[3] ~= '1' and now >= tonumber(m[1])
      and now < tonumber(m[2]) then
    local boost = tonumber(m[4] or '0')
    if tonumber(ARGV[17]) > 0 then
      boost = math.max(boost, now) + tonumber(ARGV[17])
      redis.call('HSET', KEYS[5], 'boost', boost)
    end
    local pts = coins
    if now < boost then pts = coins * 2 end
    redis.call('HINCRBY', KEYS[5], 'score', pts)
    redis.call('ZINCRBY', KEYS[6], pts, user)
  end
  -- goal: progress (unlogged), then exactly one goal_reached (logged)
  local g = redis.call('HMGET', KEYS[7], 'id', 'kind', 'gift', 'target', 'done')
  if g[1] and g[5] ~= '1' then
    local add = 0
    if kind == 'gift' and g[2] == 'coins' then
      add = coins
    elseif kind == 'gift' and g[2] == 'gift' and g[3] == ARGV[15] then
      add = tonumber(ARGV[16])
    elseif kind == 'sub' and g[2] == 'subs' then
      add = 1
    end
    if add > 0 then
      local p = redis.call('HINCRBY', KEYS[7], 'progress', add)
      local gift = 'null'
      if g[3] and g[3] ~= '' then gift = '"' .. g[3] .. '"' end
      local body = string.format(
        '"room":"%s","goal":"%s","kind":"%s","gift":%s,"progress":%d,"target":%d',
        room, g[1], g[2], gift, p, tonumber(g[4]))
      emit('"ev":"goal",' .. body, false)
      if p >= tonumber(g[4]) then
        redis.call('HSET', KEYS[7], 'done', '1')
        reached = g[2]
        emit('"ev":"goal_reached",' .. body, true)
      end
    end
  end
  -- hype train: N distinct gifters within the window start it; each gift refreshes it
  local hv = tonumber(ARGV[18])
  if kind == 'gift' and hv > 0 then
    local h = redis.call('HMGET', KEYS[8], 'state', 'ends', 'cool', 'level', 'n', 'total')
    local go = false
    local level = tonumber(h[4] or '0')
    local n = tonumber(h[5] or '0')
    local before = tonumber(h[6] or '0') -- the train's total before this gift
    if h[1] == 'run' then
      go = now < tonumber(h[2])  -- over: live_tick.lua logs its end first
    elseif now >= tonumber(h[3] or '0') then
      redis.call('ZADD', KEYS[9], now, user)
      redis.call('ZREMRANGEBYSCORE', KEYS[9], '-inf', now - tonumber(ARGV[19]))
      if redis.call('ZCARD', KEYS[9]) >= hv then
        redis.call('DEL', KEYS[9], KEYS[10])
        n = redis.call('HINCRBY', KEYS[8], 'n', 1)
        level = 0
        before = 0
        redis.call('HSET', KEYS[8], 'state', 'run', 'total', 0, 'level', 0)
        redis.call('HSET', KEYS[1], 'hype', '1')
        go = true
        emit(string.format('"ev":"hype_start","room":"%s","train":%d,"ends":%d',
          room, n, now + tonumber(ARGV[20])), true)
      end
    end
    if go then
      local total = before + coins
      redis.call('ZINCRBY', KEYS[10], coins, user)
      local ends = now + tonumber(ARGV[20])
      local reached, need, i = level, 'null', 0
      for th in string.gmatch(ARGV[22], '%d+') do
        i = i + 1
        if total >= tonumber(th) then
          if i > reached then reached = i end
        elseif need == 'null' then
          need = th
        end
      end
      for l = level + 1, reached do
        emit(string.format('"ev":"hype_level","room":"%s","train":%d,"level":%d,"total":%d',
          room, n, l, total), true)
      end
      -- one write of the train: its total, its countdown and the level it reached
      redis.call('HSET', KEYS[8], 'total', string.format('%d', total),
        'ends', string.format('%d', ends), 'level', reached)
      emit(string.format(
        '"ev":"hype","room":"%s","train":%d,"level":%d,"total":%d,"next":%s,"ends":%d',
        room, n, reached, total, need, ends), false)
    end
  end
end
return {seq, 1, reached}
