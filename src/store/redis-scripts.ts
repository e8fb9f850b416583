/**
 * The Lua scripts of the Redis task queue (redis-queue.ts). Each runs atomically in Redis: one
 * round trip changes a record and its place together.
 *
 * Records are the JSON that JavaScript wrote, never decoded and re-encoded here (Redis's cjson
 * would turn `[]` into `{}` and cut numbers to 14 digits). A claim or a lease change rewrites only
 * the hot prefix of a record (core/task.ts: the first twelve fields, scalars only, in a fixed
 * order); everything after it is copied byte for byte. A record whose prefix does not parse is
 * left alone and reported (`-1`), and JavaScript puts it in the current layout first.
 *
 * Keys (all under the store's namespace, which carries a Redis Cluster hash tag, `{converge}:` by
 * default, so that every key a script touches lives on one slot):
 *   k:task:<id>        the record              q:<queue>:ready    zset: score -priority, member seq:id
 *   q:<queue>:delayed  zset: score notBefore   t:held             zset: score lease end (+inf: never)
 *   t:done:<state>     zset: score updatedAt   t:queues           hash queue -> [poolId, capabilities]
 *   t:queues:v         registry version        t:counts           hash: running -> how many
 * Counts by state come from the sets' sizes (ZCARD); only "running" (a part of held) is counted.
 *
 * Cost matters here (a script runs for every claim and report): a record's hot prefix is read by
 * one pattern with twelve captures and written by one string.format, never field by field.
 */

const COMMON = `
local NS = ARGV[1]
local PREFIX = '^{"state":([^,]*),"assignedTo":([^,]*),"claimedAt":([^,]*),"attempts":([^,]*),' ..
  '"leaseToken":([^,]*),"leaseExpiresAt":([^,]*),"notBefore":([^,]*),"updatedAt":([^,]*),' ..
  '"priority":([^,]*),"seq":([^,]*),"queue":([^,]*),"claimTtlMs":([^,]*),()'
local LAYOUT = '{"state":%s,"assignedTo":%s,"claimedAt":%s,"attempts":%s,"leaseToken":%s,"leaseExpiresAt":%s,' ..
  '"notBefore":%s,"updatedAt":%s,"priority":%s,"seq":%s,"queue":%s,"claimTtlMs":%s,'
local function rkey(id) return NS .. 'k:task:' .. id end
local function ready(q) return NS .. 'q:' .. q .. ':ready' end
local function delayed(q) return NS .. 'q:' .. q .. ':delayed' end
local HELD = NS .. 't:held'
local COUNTS = NS .. 't:counts'
local function done(state) return NS .. 't:done:' .. state end
local function unq(v) return string.sub(v, 2, -2) end
local function num(v) return tonumber(v) end

-- The hot fields of a record (raw JSON values), and where the rest of it begins (the rest is cut
-- out only when a claim rebuilds the record), or nil when it is not in that layout.
local function parse(rec)
  if not rec then return nil end
  local s, a, c, t, l, e, n, u, p, q, qu, tt, rest = string.match(rec, PREFIX)
  if not s then return nil end
  return {state = s, assignedTo = a, claimedAt = c, attempts = t, leaseToken = l, leaseExpiresAt = e,
    notBefore = n, updatedAt = u, priority = p, seq = q, queue = qu, claimTtlMs = tt, src = rec, pos = rest}
end

local function build(f)
  return string.format(LAYOUT, f.state, f.assignedTo, f.claimedAt, f.attempts, f.leaseToken, f.leaseExpiresAt,
    f.notBefore, f.updatedAt, f.priority, f.seq, f.queue, f.claimTtlMs) .. string.sub(f.src, f.pos)
end

local function member(f, id) return string.format('%016d', num(f.seq)) .. ':' .. id end

local function held(state) return state == 'assigned' or state == 'running' end

-- Puts a task in the place its record says (see task-queue.ts placementOf).
local function place(id, f, now)
  local state = unq(f.state)
  if state == 'pending' then
    local nb = num(f.notBefore) or 0
    if nb > now then redis.call('ZADD', delayed(unq(f.queue)), nb, id)
    else redis.call('ZADD', ready(unq(f.queue)), -num(f.priority), member(f, id)) end
  elseif held(state) then
    local untl = num(f.leaseExpiresAt)
    if untl then redis.call('ZADD', HELD, untl, id) else redis.call('ZADD', HELD, '+inf', id) end
  else
    redis.call('ZADD', done(state), num(f.updatedAt), id)
  end
  if state == 'running' then redis.call('HINCRBY', COUNTS, 'running', 1) end
end

-- Takes a task out of the place its (old) record says; \`popped\`: a pending task already taken out
-- of ready by the ZPOPMIN that found it (it was in no delayed set: a task waits in one place).
local function unplace(id, f, popped)
  local state = unq(f.state)
  if state == 'pending' then
    if popped then return end
    redis.call('ZREM', ready(unq(f.queue)), member(f, id))
    redis.call('ZREM', delayed(unq(f.queue)), id)
  elseif held(state) then
    redis.call('ZREM', HELD, id)
  else
    redis.call('ZREM', done(state), id)
  end
  if state == 'running' then redis.call('HINCRBY', COUNTS, 'running', -1) end
end

local function write(id, old, new, rec, now, popped)
  redis.call('SET', rkey(id), rec)
  if old then unplace(id, old, popped) end
  place(id, new, now)
end

-- The claimed form of a pending record (task-queue.ts claimed()); \`popped\` as for unplace.
local function claim(id, f, agent, token, now, defaultTtl, ttl, popped)
  local own = num(f.claimTtlMs)
  local t = ttl or own or defaultTtl
  local at = string.format('%d', now)
  local n = {state = '"assigned"', assignedTo = '"' .. agent .. '"', claimedAt = at,
    attempts = string.format('%d', num(f.attempts) + 1), leaseToken = '"' .. token .. '"',
    leaseExpiresAt = t and string.format('%d', now + t) or 'null', notBefore = 'null', updatedAt = at,
    priority = f.priority, seq = f.seq, queue = f.queue, claimTtlMs = f.claimTtlMs, src = f.src, pos = f.pos}
  local rec = build(n)
  write(id, f, n, rec, now, popped)
  return rec
end

local function claimable(f, now)
  return f and unq(f.state) == 'pending' and (num(f.notBefore) or 0) <= now
end

-- Moves a queue's delayed tasks that came due to ready (at most 100 per call).
local function promote(q, now)
  local due = redis.call('ZRANGEBYSCORE', delayed(q), '-inf', now, 'LIMIT', 0, 100)
  for _, id in ipairs(due) do
    local f = parse(redis.call('GET', rkey(id)))
    redis.call('ZREM', delayed(q), id)
    if f and unq(f.state) == 'pending' then
      local nb = num(f.notBefore) or 0
      if nb > now then redis.call('ZADD', delayed(q), nb, id)
      else redis.call('ZADD', ready(q), -num(f.priority), member(f, id)) end
    end
  end
end

-- Claims up to #tokens of the best due tasks of the queues; returns their records, and in
-- \`repair\` the ids of records found in another layout (taken out of the queue until adopted).
local function claimNext(queues, agent, now, defaultTtl, ttl, tokens, repair)
  for _, q in ipairs(queues) do promote(q, now) end
  local out = {}
  local guard = #tokens + 1000
  while #out < #tokens and guard > 0 do
    guard = guard - 1
    -- The queue whose head runs first (one visible queue, the common case: that one), then its head,
    -- popped: taken out of ready in the same call that finds it.
    local bestQ = queues[1]
    if #queues > 1 then
      local bestM, bestS
      bestQ = nil
      for _, q in ipairs(queues) do
        local head = redis.call('ZRANGE', ready(q), 0, 0, 'WITHSCORES')
        if head[1] then
          local s = tonumber(head[2])
          if not bestM or s < bestS or (s == bestS and head[1] < bestM) then bestQ, bestM, bestS = q, head[1], s end
        end
      end
    end
    if not bestQ then break end
    local bestM = redis.call('ZPOPMIN', ready(bestQ))[1]
    if not bestM then break end
    local id = string.sub(bestM, 18)
    local rec = redis.call('GET', rkey(id))
    local f = parse(rec)
    if claimable(f, now) and member(f, id) == bestM then
      out[#out + 1] = claim(id, f, agent, tokens[#out + 1], now, defaultTtl, ttl, true)
    else
      -- A stale entry (popped already).
      if rec and not f then repair[#repair + 1] = id
      elseif f and unq(f.state) == 'pending' then
        -- Not due (a backoff began after it was queued), or queued under another key: put it where it belongs.
        local nb = num(f.notBefore) or 0
        if nb > now then redis.call('ZADD', delayed(unq(f.queue)), nb, id)
        else redis.call('ZADD', ready(unq(f.queue)), -num(f.priority), member(f, id)) end
      end
    end
  end
  return out
end

-- The reply of a claim: {registry version, #repair, repair ids..., records...}.
local function claimReply(out, repair)
  local reply = {redis.call('GET', NS .. 't:queues:v') or '0', #repair}
  for _, id in ipairs(repair) do reply[#reply + 1] = id end
  for _, rec in ipairs(out) do reply[#reply + 1] = rec end
  return reply
end

-- Reads the claim arguments starting at ARGV[i]: agent, now, defaultTtl, ttl, #tokens, tokens, #queues, queues.
local function claimArgs(i)
  local agent, now = ARGV[i], tonumber(ARGV[i + 1])
  local defaultTtl, ttl = tonumber(ARGV[i + 2]), tonumber(ARGV[i + 3])
  local nt = tonumber(ARGV[i + 4])
  local tokens = {}
  for j = 1, nt do tokens[j] = ARGV[i + 4 + j] end
  local k = i + 5 + nt
  local nq = tonumber(ARGV[k])
  local queues = {}
  for j = 1, nq do queues[j] = ARGV[k + j] end
  return agent, now, defaultTtl, ttl, tokens, queues
end
`;

/**
 * ARGV: ns, then per task: id, record, queue, -priority, the ready member, notBefore ('' for none),
 * now, route ('' when this process knows the queue is registered). Creates each absent task (SET NX)
 * and places it (a new task is pending; JavaScript made its record, in the layout, and says where
 * it goes, so nothing is parsed here; an empty member means a held or finished record, placed by
 * parsing it), registering its queue. Replies 1 (created) or 0 (the id existed) per task.
 */
export const SUBMIT = `${COMMON}
local out = {}
for i = 2, #ARGV, 8 do
  local id, rec, q, score, m, nb, now, route = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4],
    ARGV[i + 5], tonumber(ARGV[i + 6]), ARGV[i + 7]
  if redis.call('SET', rkey(id), rec, 'NX') then
    if m == '' then place(id, parse(rec), now)
    elseif nb ~= '' and tonumber(nb) > now then redis.call('ZADD', delayed(q), nb, id)
    else redis.call('ZADD', ready(q), score, m) end
    if route ~= '' and redis.call('HSETNX', NS .. 't:queues', q, route) == 1 then
      redis.call('INCR', NS .. 't:queues:v')
    end
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
return out`;

/**
 * ARGV: ns, id, agent, token, now, defaultTtl, ttl. Replies {1, record} when claimed,
 * {0, record|false} when not, {-1, record} when the record needs the current layout.
 */
export const CLAIM = `${COMMON}
local id, agent, token, now = ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
local rec = redis.call('GET', rkey(id))
if not rec then return {0, false} end
local f = parse(rec)
if not f then return {-1, rec} end
if not claimable(f, now) then return {0, rec} end
return {1, claim(id, f, agent, token, now, tonumber(ARGV[6]), tonumber(ARGV[7]))}`;

/** ARGV: ns, then the claim arguments (see claimArgs). Replies as claimReply says. */
export const CLAIM_NEXT = `${COMMON}
local agent, now, defaultTtl, ttl, tokens, queues = claimArgs(2)
local repair = {}
local out = claimNext(queues, agent, now, defaultTtl, ttl, tokens, repair)
return claimReply(out, repair)`;

/**
 * ARGV: ns, id, kind (lease|assignee|record), arg (token | agent id | SHA-1 of the record), next
 * record, now, claim? (0|1), then the claim arguments. Writes `next` if the expectation holds of
 * the current record. Replies {1} (or {1, claimReply...} when it claimed too), {0, current|false},
 * or {-1, current} when a record is not in the current layout.
 */
export const TRANSITION = `${COMMON}
local id, kind, arg, nextRec, now = ARGV[2], ARGV[3], ARGV[4], ARGV[5], tonumber(ARGV[6])
local rec = redis.call('GET', rkey(id))
if not rec then return {0, false} end
local f = parse(rec)
local n = parse(nextRec)
if not f or not n then return {-1, rec} end
local ok
if kind == 'lease' then ok = held(unq(f.state)) and f.leaseToken == '"' .. arg .. '"'
elseif kind == 'assignee' then ok = held(unq(f.state)) and f.assignedTo == '"' .. arg .. '"' and f.leaseToken == 'null'
else ok = redis.sha1hex(rec) == arg end
if not ok then return {0, rec} end
write(id, f, n, nextRec, now)
if ARGV[7] ~= '1' then return {1} end
local repair = {}
local agent, cnow, defaultTtl, ttl, tokens, queues = claimArgs(8)
local reply = claimReply(claimNext(queues, agent, cnow, defaultTtl, ttl, tokens, repair), repair)
table.insert(reply, 1, 1)
return reply`;

/**
 * ARGV: ns, id, SHA-1 of the current record, the record in the current layout, its old queue and
 * seq, now. Puts a record written in another layout into the current one, in the right place.
 */
export const ADOPT = `${COMMON}
local id, sha, rec, oldQueue, oldSeq, now = ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], tonumber(ARGV[7])
local cur = redis.call('GET', rkey(id))
if sha ~= '' and (not cur or redis.sha1hex(cur) ~= sha) then return 0 end
local f = parse(rec)
redis.call('ZREM', ready(oldQueue), string.format('%016d', tonumber(oldSeq)) .. ':' .. id)
redis.call('ZREM', delayed(oldQueue), id)
redis.call('ZREM', HELD, id)
for _, s in ipairs({'completed', 'failed', 'cancelled'}) do redis.call('ZREM', done(s), id) end
local old = cur and parse(cur)
if old and unq(old.state) == 'running' then redis.call('HINCRBY', COUNTS, 'running', -1) end
write(id, nil, f, rec, now)
if redis.call('HSETNX', NS .. 't:queues', unq(f.queue), ARGV[8]) == 1 then redis.call('INCR', NS .. 't:queues:v') end
return 1`;

/**
 * ARGV: ns, now, limit, queues... Replies the best due pending tasks (after promoting due ones), as
 * a flat list of id, record, id, record, ...
 */
export const PENDING = `${COMMON}
local now, limit = tonumber(ARGV[2]), tonumber(ARGV[3])
local all = {}
for i = 4, #ARGV do
  local q = ARGV[i]
  promote(q, now)
  local head = redis.call('ZRANGE', ready(q), 0, limit - 1, 'WITHSCORES')
  for j = 1, #head, 2 do all[#all + 1] = {tonumber(head[j + 1]), head[j]} end
end
table.sort(all, function(a, b) if a[1] ~= b[1] then return a[1] < b[1] end return a[2] < b[2] end)
local out = {}
for i = 1, math.min(limit, #all) do
  local id = string.sub(all[i][2], 18)
  local rec = redis.call('GET', rkey(id))
  if rec then
    out[#out + 1] = id
    out[#out + 1] = rec
  end
end
return out`;

/**
 * ARGV: ns, set (held | done:<state>), max score (exclusive when it starts with '('), limit, how
 * many to skip first. Replies the tasks, lowest score first, as a flat list of id, record, ...
 */
export const RANGE = `${COMMON}
local skip, limit = tonumber(ARGV[5]), tonumber(ARGV[4])
local ids = redis.call('ZRANGEBYSCORE', NS .. 't:' .. ARGV[2], '-inf', ARGV[3], 'LIMIT', skip, limit)
local out = {}
for _, id in ipairs(ids) do
  local rec = redis.call('GET', rkey(id))
  if rec then
    out[#out + 1] = id
    out[#out + 1] = rec
  end
end
return out`;

/**
 * ARGV: ns, since, limit. Replies, for each final state, up to `limit` entries of its finished
 * set scored at or after `since`, lowest first, as a flat list: state, id, score, state, id, ...
 */
export const FINISHED_SINCE = `${COMMON}
local out = {}
for _, s in ipairs({'completed', 'failed', 'cancelled'}) do
  local got = redis.call('ZRANGEBYSCORE', done(s), ARGV[2], '+inf', 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[3]))
  for i = 1, #got, 2 do
    out[#out + 1] = s
    out[#out + 1] = got[i]
    out[#out + 1] = got[i + 1]
  end
end
return out`;

/** ARGV: ns, ids... Deletes each task that is finished. Replies how many were. */
export const REMOVE = `${COMMON}
local n = 0
for i = 2, #ARGV do
  local id = ARGV[i]
  local f = parse(redis.call('GET', rkey(id)))
  local state = f and unq(f.state)
  if state == 'completed' or state == 'failed' or state == 'cancelled' then
    redis.call('DEL', rkey(id))
    unplace(id, f)
    n = n + 1
  end
end
return n`;
