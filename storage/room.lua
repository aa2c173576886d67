-- room.lua: every mutation of a live OTJ room, atomic inside Redis.
--
-- A room's keys share one hash tag, so the whole room lives on one shard:
--   KEYS[1] meta      hash  host, module, code, task, ntasks, digest, state,
--                           seq, opened (digest: the fingerprint of the
--                           module's tasks as the room opened with them),
--                           touched (ms: when the keys' expiry was last
--                           pushed out, see touch),
--                           and "try:<learner>" -> "window start (ms):tries"
--                           (confirmation tries, op ctry)
--   KEYS[2] members   hash  learner id -> display name (the room's learners)
--   KEYS[3] log       list  the last ARGV[6] events, oldest first
--   KEYS[4] answers   hash  "learner:task" -> answer record (msgpack, made by otjd)
--   KEYS[5] marks     hash  "learner:task" -> mark record (msgpack, made by otjd)
--   KEYS[6] ikeys     hash  "by:key" -> seq of the answer that key recorded,
--                           and "o:learner:task" -> those keys, oldest first
--                           (msgpack array): the last IKEYS_KEPT only
--   KEYS[7] presence  hash  "user|instance" -> "connections:last beat (ms)"
--   KEYS[8] outcomes  hash  learner id -> "status:completion"
--   KEYS[9] attendance hash learner id -> when they were present, in ms:
--                           "earlier;from-to,from-to,from-" (the last
--                           interval open while they are here; `earlier` is
--                           the time of intervals dropped past ATT_KEPT)
-- ARGV[1] op, ARGV[2] now (ms), ARGV[3] idle ttl (s), ARGV[4] channel,
-- ARGV[5] "1" for sharded pub/sub, ARGV[6] events kept in the log,
-- ARGV[7] the calling otjd instance, ARGV[8] presence staleness (ms); the
-- op's own arguments follow from ARGV[9]. The C side of every layout here
-- (key names, the common ARGV, each op's arguments) is storage/rstore.c,
-- one function per op: change the two together.
--
-- Presence is per person and per instance: a person is online while some
-- instance holds a connection of theirs and keeps beating for it. An
-- instance that dies stops beating; the next beat of any other instance in
-- the room removes its stale entries and announces who left.
--
-- Every event is recorded, numbered and published in the same step: the
-- room's seq grows by one, the event {seq, subject, whole, redacted} goes to
-- the log and to the channel; on the channel it is followed by one more
-- msgpack integer, ARGV[2] (the calling instance's clock, ms), from which a
-- receiving otjd measures the pub/sub hop (a reader that does not know it
-- reads the event and ignores what follows; the log does not keep it). `subject` is the learner an event is about
-- (0 for none); `redacted` is the event without private fields, or "" when
-- the event has none. Replies: {"ok", seq, ...} or {"err", code, message}.
--
-- Bounds, so that no client can grow a room without end: the log keeps the
-- last ARGV[6] events (a sync from before them gets {"old", seq}: a
-- snapshot), and answer idempotency keys are kept for the last IKEYS_KEPT
-- answers of each learner to each task (answers themselves are one per
-- learner and task). Both are enforced here, so every instance obeys them.

local op = ARGV[1]
-- a re-sent answer is recognised among the last 8 its learner gave to that
-- task; a client re-sends only its unacknowledged answers, so a few suffice
local IKEYS_KEPT = 8
local META, MEMBERS, LOG, ANSWERS, MARKS, IKEYS, PRESENCE, OUTCOMES =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8]
local ATTEND = KEYS[9]
-- a learner's attendance keeps this many joined/left intervals; older ones
-- are folded into one total, so a flaky phone cannot grow it without end
local ATT_KEPT = 32

-- the keys this call may have made (see touch), filled by made()
local fresh, is_fresh = {}, {}
local function made(key)
  if not is_fresh[key] then
    is_fresh[key] = true
    fresh[#fresh + 1] = key
  end
end

-- `subject` is the learner the event is about: otjd's visibility rule
-- (protocol/proto.c, proto_record_hidden_for) sends `redacted` to every
-- learner but the subject, and `whole` to the subject and the host
-- (server/live_room.c). The script never decides visibility itself.
local function emit(subject, whole, redacted)
  local seq = redis.call('HINCRBY', META, 'seq', 1)
  local msg = cmsgpack.pack({seq, tonumber(subject), whole, redacted})
  -- RPUSH answers the list's length: trim only when it is over the bound
  local keep, len = tonumber(ARGV[6]), redis.call('RPUSH', LOG, msg)
  if len > keep then redis.call('LTRIM', LOG, -keep, -1) end
  if len == 1 then made(LOG) end
  local sent = msg .. cmsgpack.pack(tonumber(ARGV[2]))
  if ARGV[5] == '1' then
    redis.call('SPUBLISH', ARGV[4], sent)
  else
    redis.call('PUBLISH', ARGV[4], sent)
  end
  return seq
end

-- NOW for arithmetic; ARGV[2] itself where it is written (Lua 5.1 would
-- write a 13-digit number in exponent notation)
local NOW, INST, STALE = tonumber(ARGV[2]), ARGV[7], tonumber(ARGV[8])

-- An idle room expires ARGV[3] seconds (TTL) after its last mutation.
-- Pushing all nine keys' expiry out on every mutation was a third of a
-- join's time in Redis, so it is done at most once per TOUCH_EVERY (ms):
-- the keys then expire TTL + TOUCH_EVERY after META's `touched`, never
-- sooner than TTL after a mutation and at most TOUCH_EVERY later. A key
-- made since then has no expiry: every write that may have made one (a
-- hash's new field: the hash may have been empty, i.e. absent; the log's
-- first event) names it with made(), and touch gives it the same deadline.
-- Expiries are relative (PEXPIRE): Redis' clock and otjd's may differ.
local TTL_MS = tonumber(ARGV[3]) * 1000
local TOUCH_EVERY = math.max(1000, math.floor(TTL_MS / 16))
-- META's `touched` when the op read it already (false: not set), else nil
local touched

-- refresh: a mutation (false: beat, which keeps made keys from living for
-- ever but must not keep an idle room alive)
local function touch(refresh)
  local t = touched
  if t == nil then t = redis.call('HGET', META, 'touched') end
  t = tonumber(t)
  if refresh ~= false and (not t or NOW - t >= TOUCH_EVERY) then
    redis.call('HSET', META, 'touched', ARGV[2])
    for i = 1, #KEYS do redis.call('PEXPIRE', KEYS[i], TTL_MS + TOUCH_EVERY) end
    return
  end
  if #fresh == 0 or not t then return end
  local left = t + TTL_MS + TOUCH_EVERY - NOW
  if left < TTL_MS then left = TTL_MS end -- a clock behind another's
  left = string.format('%d', left)
  for i = 1, #fresh do redis.call('PEXPIRE', fresh[i], left) end
end

-- {user id -> true} of everyone with a live presence entry (or with any
-- entry at all, stale ones included, when `any` is true)
local function online_set(any)
  local set, all = {}, redis.call('HGETALL', PRESENCE)
  for i = 1, #all, 2 do
    local user = string.match(all[i], '^(%d+)|')
    local n, t = string.match(all[i + 1], '^(%d+):(%d+)$')
    if user and n and tonumber(n) > 0 and (any or NOW - tonumber(t) <= STALE) then
      set[user] = true
    end
  end
  return set
end

-- whether `user` has a live presence entry on some instance, and their
-- connections on this one (as my_count): Redis finds that user's entries
-- itself (HSCAN MATCH, in C; user ids are digits, no glob characters), and
-- only those are parsed here. Reading the whole hash into Lua made this the
-- dearest part of a join in a room of 200.
local function is_online(user)
  local cursor, live, mine, own = '0', false, 0, user .. '|' .. INST
  repeat
    local r = redis.call('HSCAN', PRESENCE, cursor, 'MATCH', user .. '|*', 'COUNT', 1000)
    cursor = r[1]
    local found = r[2]
    for i = 1, #found, 2 do
      local n, t = string.match(found[i + 1], '^(%d+):(%d+)$')
      if n and tonumber(n) > 0 and NOW - tonumber(t) <= STALE then live = true end
      if found[i] == own then mine = tonumber(n) or 0 end
    end
  until cursor == '0'
  return live, mine
end

local function my_count(user)
  local v = redis.call('HGET', PRESENCE, user .. '|' .. INST)
  return v and tonumber(string.match(v, '^(%d+):')) or 0
end

-- a learner's presence in the room began (here) or ended (not here): the
-- attendance the completion keeps (the host has none)
local function attend(user, here, is_host)
  if is_host == nil then is_host = redis.call('HGET', META, 'host') == tostring(user) end
  if is_host then return end
  local had = redis.call('HGET', ATTEND, user)
  local v = had or '0;'
  local earlier, rest = string.match(v, '^(%d+);(.*)$')
  earlier = tonumber(earlier or '0')
  local list = {}
  for from, to in string.gmatch(rest or '', '(%d+)-(%d*)') do
    list[#list + 1] = {from, to}
  end
  local last = list[#list]
  if here then
    if last and last[2] == '' then return end
    list[#list + 1] = {ARGV[2], ''}
  else
    if not last or last[2] ~= '' then return end
    last[2] = ARGV[2]
  end
  while #list > ATT_KEPT do
    local old = table.remove(list, 1)
    earlier = earlier + (tonumber(old[2]) - tonumber(old[1]))
  end
  local parts = {}
  for i = 1, #list do parts[i] = list[i][1] .. '-' .. list[i][2] end
  redis.call('HSET', ATTEND, user, string.format('%d', earlier) .. ';' .. table.concat(parts, ','))
  if not had then made(ATTEND) end
end

local function seq_now()
  return tonumber(redis.call('HGET', META, 'seq') or '0')
end

local function must_exist()
  if redis.call('EXISTS', META) == 0 then
    return {'err', 'not_found', 'This room does not exist or has ended.'}
  end
end

-- the same refusal as for a room that does not exist: a room id tells a
-- non-member nothing
local function must_see(user)
  local e = must_exist()
  if e then return e end
  if redis.call('HGET', META, 'host') ~= user and
     redis.call('HEXISTS', MEMBERS, user) == 0 then
    return {'err', 'not_found', 'This room does not exist or has ended.'}
  end
end

local function must_be_open()
  local e = must_exist()
  if e then return e end
  if redis.call('HGET', META, 'state') ~= 'open' then
    return {'err', 'conflict', 'This room is closed.'}
  end
end

if op == 'open' then
  -- host, module, code, ntasks, digest, then learner id / name pairs
  if redis.call('EXISTS', META) == 1 then
    return {'err', 'conflict', 'A room with this id exists.'}
  end
  redis.call('HSET', META, 'host', ARGV[9], 'module', ARGV[10], 'code', ARGV[11],
    'ntasks', ARGV[12], 'digest', ARGV[13], 'task', 0, 'state', 'open', 'seq', 0,
    'opened', ARGV[2])
  for i = 14, #ARGV, 2 do
    redis.call('HSET', MEMBERS, ARGV[i], ARGV[i + 1])
  end
  touched = false
  touch()
  return {'ok', 0}

elseif op == 'meta' then
  local e = must_exist()
  if e then return e end
  return {'ok', seq_now(), redis.call('HGETALL', META)}

elseif op == 'snapshot' then
  -- {"ok", seq}: otjd sends this call in a MULTI with the room's snapshot
  -- reads after it (storage/rstore.c, rstore_snapshot_read), which Redis
  -- answers natively at a fraction of what the same reads cost through
  -- Lua; the MULTI makes them one atomic step with this call
  local e = must_exist()
  if e then return e end
  return {'ok', seq_now()}

elseif op == 'join' then
  -- n, then n times: user, role ("host"/"learner"), may_add ("1"/"0"),
  -- name; then most learners. Several connections that came to the room
  -- together join in one call (otjd gathers them) and the room hears ONE
  -- `joined` event for all who came online: {user, role} for one person
  -- (with added = true when joining made them a learner of the room),
  -- {role = "learner", users = [...], added = [...]} for several. The reply
  -- is {"ok", seq, verdicts}, seq after that event, a verdict per joiner:
  -- "ok", or the code of the refusal ("forbidden", "too_large",
  -- "not_found") for that joiner alone. As for op snapshot, otjd reads the
  -- one snapshot they all get natively, in the same MULTI after this call.
  local state, host, t = unpack(redis.call('HMGET', META, 'state', 'host', 'touched'))
  touched = t
  if not state then
    return {'err', 'not_found', 'This room does not exist or has ended.'}
  end
  local n, max = tonumber(ARGV[9]), tonumber(ARGV[10 + 4 * tonumber(ARGV[9])])
  local verdicts = {}
  if state ~= 'open' then
    -- a closed room can still be looked at, by its host and members only;
    -- nobody joins it any more
    for i = 1, n do
      verdicts[i] = must_see(ARGV[6 + 4 * i]) and 'not_found' or 'ok'
    end
    return {'ok', seq_now(), verdicts}
  end
  -- the joiners of this call already seen online (a user may come twice)
  local online = {}
  local came, added, role = {}, {}, nil
  for i = 1, n do
    local b = 6 + 4 * i
    local user, urole, may_add, name = ARGV[b], ARGV[b + 1], ARGV[b + 2], ARGV[b + 3]
    local new = false
    verdicts[i] = 'ok'
    if urole == 'learner' and redis.call('HEXISTS', MEMBERS, user) == 0 then
      local len = may_add == '1' and redis.call('HLEN', MEMBERS)
      if may_add ~= '1' then
        verdicts[i] = 'forbidden'
      elseif len >= max then
        verdicts[i] = 'too_large'
      else
        redis.call('HSET', MEMBERS, user, name)
        if len == 0 then made(MEMBERS) end
        new = true
      end
    end
    if verdicts[i] == 'ok' then
      -- a user new to the room has no presence entries
      local was, mine = false, 0
      if online[user] then
        was, mine = true, my_count(user)
      elseif not new then
        was, mine = is_online(user)
      end
      online[user] = true
      if redis.call('HSET', PRESENCE, user .. '|' .. INST, (mine + 1) .. ':' .. ARGV[2]) == 1 then
        made(PRESENCE)
      end
      if not was then
        attend(user, true, user == host)
        came[#came + 1] = tonumber(user)
        role = urole
        if new then added[#added + 1] = tonumber(user) end
      end
    end
  end
  local seq
  if #came == 1 then
    local ev = {type = 'joined', user = came[1], role = role}
    if #added == 1 then ev.added = true end
    seq = emit(came[1], cmsgpack.pack(ev), '')
  elseif #came > 1 then
    -- otjd gathers learners only; the host joins alone
    local ev = {type = 'joined', role = 'learner', users = came}
    if #added > 0 then ev.added = added end
    seq = emit(0, cmsgpack.pack(ev), '')
  end
  touch()
  return {'ok', seq or seq_now(), verdicts}

elseif op == 'leave' then
  -- user, left
  local e = must_exist()
  if e then return e end
  local user = ARGV[9]
  local n = my_count(user)
  if n <= 0 then return {'ok', seq_now()} end
  if n == 1 then
    redis.call('HDEL', PRESENCE, user .. '|' .. INST)
  else
    redis.call('HSET', PRESENCE, user .. '|' .. INST, (n - 1) .. ':' .. ARGV[2])
  end
  if not is_online(user) and redis.call('HGET', META, 'state') == 'open' then
    attend(user, false)
    emit(user, ARGV[10], '')
  end
  touch()
  return {'ok', seq_now()}

elseif op == 'add' then
  -- learner, name, added, most learners
  local e = must_be_open()
  if e then return e end
  if redis.call('HEXISTS', MEMBERS, ARGV[9]) == 1 then return {'ok', seq_now()} end
  local len = redis.call('HLEN', MEMBERS)
  if len >= tonumber(ARGV[12]) then
    return {'err', 'too_large', 'This room is full.'}
  end
  redis.call('HSET', MEMBERS, ARGV[9], ARGV[10])
  if len == 0 then made(MEMBERS) end
  local seq = emit(ARGV[9], ARGV[11], '')
  touch()
  return {'ok', seq}

elseif op == 'remove' then
  -- learner, removed
  local e = must_be_open()
  if e then return e end
  if redis.call('HDEL', MEMBERS, ARGV[9]) == 0 then
    return {'err', 'not_found', 'That learner is not in this room.'}
  end
  local all = redis.call('HKEYS', PRESENCE)
  for i = 1, #all do
    if string.match(all[i], '^(%d+)|') == ARGV[9] then redis.call('HDEL', PRESENCE, all[i]) end
  end
  attend(ARGV[9], false)
  local seq = emit(ARGV[9], ARGV[10], '')
  touch()
  return {'ok', seq}

elseif op == 'step' then
  -- task, step
  local e = must_be_open()
  if e then return e end
  redis.call('HSET', META, 'task', ARGV[9])
  local seq = emit(0, ARGV[10], '')
  touch()
  return {'ok', seq}

elseif op == 'answer' then
  -- by, learner, task, key, record, whole, redacted, current_only
  local ik = ARGV[9] .. ':' .. ARGV[12]
  local had = redis.call('HGET', IKEYS, ik)
  if had then return {'ok', tonumber(had), 'dup'} end
  local e = must_be_open()
  if e then return e end
  if redis.call('HEXISTS', MEMBERS, ARGV[10]) == 0 then
    return {'err', 'forbidden', 'That learner is not in this room.'}
  end
  if ARGV[16] == '1' and redis.call('HGET', META, 'task') ~= ARGV[11] then
    return {'err', 'conflict', 'The room has moved to another task; answer the current one.'}
  end
  if redis.call('HSET', ANSWERS, ARGV[10] .. ':' .. ARGV[11], ARGV[13]) == 1 then made(ANSWERS) end
  local seq = emit(ARGV[10], ARGV[14], ARGV[15])
  redis.call('HSET', IKEYS, ik, seq)
  made(IKEYS)
  -- only the last IKEYS_KEPT keys of this learner for this task are kept
  local of = 'o:' .. ARGV[10] .. ':' .. ARGV[11]
  local packed = redis.call('HGET', IKEYS, of)
  local order = packed and cmsgpack.unpack(packed) or {}
  order[#order + 1] = ik
  while #order > IKEYS_KEPT do
    redis.call('HDEL', IKEYS, table.remove(order, 1))
  end
  redis.call('HSET', IKEYS, of, cmsgpack.pack(order))
  touch()
  return {'ok', seq}

elseif op == 'mark' and ARGV[9] == '*' then
  -- a group mark: "*", task, result name, result code (1 pass, 2 fail),
  -- note, has note ("1"/"0"), then learner ids. Every one must be a learner
  -- of the room, or nothing is applied; those who have a mark for the task
  -- already keep it. One event for the ones marked, {type, learners, task,
  -- result, note?} (redacted: without result and note); otjd shows each
  -- learner of the group only their own part (proto_group_view).
  local e = must_be_open()
  if e then return e end
  for i = 15, #ARGV do
    if redis.call('HEXISTS', MEMBERS, ARGV[i]) == 0 then
      return {'err', 'not_found', 'Learner ' .. ARGV[i] .. ' is not in this room; nothing was marked.'}
    end
  end
  local task, marked = tonumber(ARGV[10]), {}
  local tail = cmsgpack.pack(task) .. cmsgpack.pack(tonumber(ARGV[12])) ..
    (ARGV[14] == '1' and cmsgpack.pack(ARGV[13]) or '\192')
  for i = 15, #ARGV do
    local field = ARGV[i] .. ':' .. ARGV[10]
    if redis.call('HEXISTS', MARKS, field) == 0 then
      -- the record as otjd writes it: [learner, task, result, note or nil]
      redis.call('HSET', MARKS, field, '\148' .. cmsgpack.pack(tonumber(ARGV[i])) .. tail)
      made(MARKS)
      marked[#marked + 1] = tonumber(ARGV[i])
    end
  end
  if #marked == 0 then return {'ok', seq_now(), 0} end
  local whole = {type = 'mark', learners = marked, task = task, result = ARGV[11]}
  if ARGV[14] == '1' then whole.note = ARGV[13] end
  local seq = emit(0, cmsgpack.pack(whole),
    cmsgpack.pack({type = 'mark', learners = marked, task = task}))
  touch()
  return {'ok', seq, #marked}

elseif op == 'mark' then
  -- learner, task, record, whole, redacted
  local e = must_be_open()
  if e then return e end
  if redis.call('HEXISTS', MEMBERS, ARGV[9]) == 0 then
    return {'err', 'not_found', 'That learner is not in this room.'}
  end
  if redis.call('HSET', MARKS, ARGV[9] .. ':' .. ARGV[10], ARGV[11]) == 1 then made(MARKS) end
  local seq = emit(ARGV[9], ARGV[12], ARGV[13])
  touch()
  return {'ok', seq}

elseif op == 'outcomes' then
  -- repeated: learner, "status:completion", whole, redacted
  local e = must_exist()
  if e then return e end
  local seq = seq_now()
  for i = 9, #ARGV, 4 do
    if redis.call('HSET', OUTCOMES, ARGV[i], ARGV[i + 1]) == 1 then made(OUTCOMES) end
    seq = emit(ARGV[i], ARGV[i + 2], ARGV[i + 3])
  end
  touch()
  return {'ok', seq}

elseif op == 'ctry' then
  -- learner, window (ms), most tries, the status number of "pending": one
  -- try at confirming a learner's waiting approval with the room's code
  -- (otjd checks the code itself; the secret never comes here)
  local e = must_be_open()
  if e then return e end
  local learner = ARGV[9]
  if redis.call('HEXISTS', MEMBERS, learner) == 0 then
    return {'err', 'not_found', 'You are not a learner of this room.'}
  end
  local oc = redis.call('HGET', OUTCOMES, learner)
  if not oc or string.match(oc, '^(%d+):') ~= ARGV[12] then
    return {'err', 'conflict', 'Nothing of yours waits for confirmation in this room.'}
  end
  local f = 'try:' .. learner
  local v = redis.call('HGET', META, f)
  local start, n = nil, 0
  if v then
    local s0, n0 = string.match(v, '^(%d+):(%d+)$')
    if s0 and NOW - tonumber(s0) < tonumber(ARGV[10]) then start, n = s0, tonumber(n0) end
  end
  if n >= tonumber(ARGV[11]) then
    return {'err', 'rate_limited',
      'Too many tries at the code: wait a minute, then type the code the screen shows.'}
  end
  redis.call('HSET', META, f, (start or ARGV[2]) .. ':' .. (n + 1))
  return {'ok', seq_now()}

elseif op == 'close' then
  -- closed
  local e = must_exist()
  if e then return e end
  if redis.call('HGET', META, 'state') ~= 'open' then return {'ok', seq_now()} end
  redis.call('HSET', META, 'state', 'closed')
  -- whoever is still here stops being present with the room
  local present = redis.call('HKEYS', ATTEND)
  for i = 1, #present do attend(present[i], false) end
  local seq = emit(0, ARGV[9], '')
  touch()
  return {'ok', seq}

elseif op == 'records' then
  -- ntasks, then learner ids: for each, {member 0/1, answers, marks,
  -- attendance}, the answers and marks one per task (nil where there is
  -- none), the attendance as its hash keeps it ("" for none)
  local e = must_exist()
  if e then return e end
  local n = tonumber(ARGV[9])
  local out = {'ok', seq_now()}
  for i = 10, #ARGV do
    local fields = {}
    for t = 0, n - 1 do fields[#fields + 1] = ARGV[i] .. ':' .. t end
    out[#out + 1] = redis.call('HEXISTS', MEMBERS, ARGV[i])
    if n > 0 then
      out[#out + 1] = redis.call('HMGET', ANSWERS, unpack(fields))
      out[#out + 1] = redis.call('HMGET', MARKS, unpack(fields))
    else
      out[#out + 1] = {}
      out[#out + 1] = {}
    end
    out[#out + 1] = redis.call('HGET', ATTEND, ARGV[i]) or ''
  end
  return out

elseif op == 'beat' then
  -- user ids: this instance still holds their connections, so their
  -- entries are refreshed (or made again); entries nobody refreshed in time
  -- belong to an instance that is gone: they are dropped. The room hears
  -- `left` for everyone no longer online and `joined` for anyone back.
  local e = must_exist()
  if e then return e end
  local before = online_set(true)
  for i = 9, #ARGV do
    -- an entry that is missing (Redis lost it, or it went stale while
    -- this instance could not reach Redis) is made again: the connection
    -- is here
    local n = my_count(ARGV[i])
    if n < 1 then n = 1 end
    if redis.call('HSET', PRESENCE, ARGV[i] .. '|' .. INST, n .. ':' .. ARGV[2]) == 1 then
      made(PRESENCE)
    end
  end
  local all = redis.call('HGETALL', PRESENCE)
  for i = 1, #all, 2 do
    local t = string.match(all[i + 1], ':(%d+)$')
    if not t or NOW - tonumber(t) > STALE then redis.call('HDEL', PRESENCE, all[i]) end
  end
  local after = online_set()
  local open = redis.call('HGET', META, 'state') == 'open'
  local host = redis.call('HGET', META, 'host')
  -- the same `e` maps otjd makes for these events (only the key order may
  -- differ, which msgpack readers ignore)
  local function presence_event(type, user)
    local role = host == user and 'host' or 'learner'
    attend(user, type == 'joined')
    emit(user, cmsgpack.pack({type = type, user = tonumber(user), role = role}), '')
  end
  if open then
    for user in pairs(before) do
      if not after[user] then presence_event('left', user) end
    end
    for user in pairs(after) do
      if not before[user] then presence_event('joined', user) end
    end
  end
  touch(false)
  return {'ok', seq_now()}

elseif op == 'sync' then
  -- since: the events after it, or {"old"} when the log no longer has them
  local e = must_exist()
  if e then return e end
  local seq = seq_now()
  local since = tonumber(ARGV[9])
  if since >= seq then return {'ok', seq} end
  local n = redis.call('LLEN', LOG)
  local first = seq - n + 1
  if since + 1 < first then return {'old', seq} end
  local out = {'ok', seq}
  local entries = redis.call('LRANGE', LOG, since + 1 - first, -1)
  for i = 1, #entries do out[#out + 1] = entries[i] end
  return out
end

return {'err', 'bad_request', 'Unknown room operation.'}
