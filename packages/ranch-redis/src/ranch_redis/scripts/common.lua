-- Shared by every ranch-redis script (prepended when the script is loaded).
--
-- KEYS[1] is the namespace's stats hash "ranch:{<namespace>}:stats"; every
-- Redis key a script touches starts with the same prefix, so all of them
-- share one hash slot (undeclared keys of that slot are fine on a cluster).
-- The key layout is documented once, in ranch_redis/layout.py; reply codes
-- and limits are written in from Python when a script is loaded (each
-- script names them as double-underscored capitals).
-- Floats arrive as Python repr() strings and leave as '%.17g' (or as Redis
-- formats a score): both round-trip a double exactly, so the arithmetic here
-- matches the Python reference. Replies are flat arrays: nested ones cost the
-- Python client far more to parse.
-- Each redis.call() costs about a microsecond, so scripts make few of them.
--
-- Read before write: a script reads every field it depends on and checks it
-- before its first write. A field that is missing takes the reference's
-- default; a field that is present but not a usable number (corrupted by
-- hand, by another program, by an older bug) takes a safe default instead
-- (pass: virtual time, i.e. the key joins the current round; weight: 1;
-- counters and serve sequence: 0) and the value written back is valid. So a
-- corrupt field can never make a script fail halfway; repair.lua reports it.
local STATS = KEYS[1]
local BASE = string.sub(STATS, 1, -6)
local ACTIVE = BASE .. 'active'  -- zset: score = pass, member = %016x(seq) .. hexkey
local LEASES = BASE .. 'leases'  -- zset: score = deadline, member = task id
local TASKS = BASE .. 'tasks'    -- hash: task id -> body (waiting and leased tasks)
local EXPIRY = BASE .. 'expiry'  -- zset: score = expires_at, member = waiting task id
local KEYSET = BASE .. 'keys'    -- set: hex keys whose list holds task ids
local FLIGHT = BASE .. 'wf'      -- zset: wake-up tokens in flight, score = deadline
local HELD = BASE .. 'wh'        -- zset: tokens held by workers, score = deadline
local BOUND = BASE .. 'wb'       -- hash: held token -> the task id it runs ('' = kept)
local HOLDER = BASE .. 'wt'      -- hash: task id -> the token held for it
local WORKERS = BASE .. 'ww'     -- zset: registered workers, score = registration deadline
local SLOTS = BASE .. 'wn'       -- hash: registered worker -> its slots
local MOTION = BASE .. 'wq'      -- hash: moved (last wake-up taken), rounds, retired
local WAKE = BASE .. 'wake'      -- list: notification marks for blocked pops (BLPOP)

local function qkey(hk) return BASE .. 'q:' .. hk end  -- list of task ids, head first
local function xkey(hk) return BASE .. 'x:' .. hk end  -- zset: the key's part of EXPIRY
local function kkey(hk) return BASE .. 'k:' .. hk end  -- hash of the key's state

local function fmt(x) return string.format('%.17g', x) end

-- A finite number, or nil.
local function num(raw)
    local x = tonumber(raw)
    if x == nil or x ~= x or x == math.huge or x == -math.huge then return nil end
    return x
end

-- A whole number in [0, 2^53), or nil.
local function whole(raw)
    local x = num(raw)
    if x == nil or x < 0 or x >= 9007199254740992 or x ~= math.floor(x) then return nil end
    return x
end

-- A weight in [MIN_WEIGHT, MAX_WEIGHT], or nil.
local function weight(raw)
    local x = num(raw)
    if x == nil or x < __MIN_WEIGHT__ or x > __MAX_WEIGHT__ then return nil end
    return x
end

local function member(seq, hk)
    return string.format('%016x', whole(seq) or 0) .. hk
end

-- The stats fields every step may need: serve sequence, virtual time, expired total.
local function stats()
    local st = redis.call('HMGET', STATS, 'seq', 'vt', 'expired')
    return whole(st[1]) or 0, num(st[2]) or 0, whole(st[3]) or 0
end

-- A key's pass from its stored field: 0 if never set, virtual time if corrupt.
local function stored_pass(raw, vt)
    if not raw then return 0 end
    return num(raw) or vt
end

-- body = "<enqueued_at>,<expires_at or empty>,<hex key>,<payload>"
-- Returns the hex key and the expiry string, or nil for a corrupt body.
local function parse(body)
    if type(body) ~= 'string' then return nil end
    local c1 = string.find(body, ',', 1, true)
    if not c1 then return nil end
    local c2 = string.find(body, ',', c1 + 1, true)
    if not c2 then return nil end
    local c3 = string.find(body, ',', c2 + 1, true)
    if not c3 or c3 == c2 + 1 then return nil end
    local exp = string.sub(body, c1 + 1, c2 - 1)
    if exp ~= '' and num(exp) == nil then return nil end
    return string.sub(body, c2 + 1, c3 - 1), exp
end

-- A task that starts waiting and expires goes into both expiry indexes.
local function index_expiry(tid, hk, exp)
    if exp ~= '' then
        redis.call('ZADD', EXPIRY, exp, tid)
        redis.call('ZADD', xkey(hk), exp, tid)
    end
end

local function unindex_expiry(tid, hk, exp)
    if exp ~= '' then
        redis.call('ZREM', EXPIRY, tid)
        redis.call('ZREM', xkey(hk), tid)
    end
end

-- A key that turns active starts at max(own pass, virtual time).
local function activate(hk, vt)
    local k = kkey(hk)
    local st = redis.call('HMGET', k, 'p', 's')
    local p = stored_pass(st[1], vt)
    if vt > p then p = vt end
    local ps = fmt(p)
    if st[2] and not whole(st[2]) then
        redis.call('HSET', k, 'p', ps, 's', 0)
    else
        redis.call('HSET', k, 'p', ps)
    end
    redis.call('ZADD', ACTIVE, ps, member(st[2], hk))
    redis.call('SADD', KEYSET, hk)
end

local function deactivate(hk)
    redis.call('ZREM', ACTIVE, member(redis.call('HGET', kkey(hk), 's'), hk))
    redis.call('SREM', KEYSET, hk)
end

-- Wake up to n blocked pops (one mark each): n calls may be runnable. The
-- list keeps at most NOTIFY_BOUND marks; wait.lua empties it when nothing
-- is runnable, so stale marks cost a waiter at most one extra round trip.
local function notify(n)
    if n > __NOTIFY_BOUND__ then n = __NOTIFY_BOUND__ end
    if n < 1 then return end
    local marks = {}
    for i = 1, n do marks[i] = '1' end
    if redis.call('LPUSH', WAKE, unpack(marks)) > __NOTIFY_BOUND__ then
        redis.call('LTRIM', WAKE, 0, __NOTIFY_BOUND__ - 1)
    end
end

-- A lease is about to end at `deadline`: if no lease ends sooner, blocked
-- pops (which sleep at most until the earliest deadline) must look again.
local function notify_deadline(deadline)
    local first = redis.call('ZRANGE', LEASES, 0, 0, 'WITHSCORES')
    if #first == 0 or tonumber(deadline) < tonumber(first[2]) then notify(1) end
end

-- Put a task back at the head of its key.
local function put_back(tid, hk, exp, vt)
    index_expiry(tid, hk, exp)
    if redis.call('LPUSH', qkey(hk), tid) == 1 then activate(hk, vt) end
    notify(1)
end

-- Appends the items of `src` (a flat list) to `dst`.
local function extend(dst, src)
    for i = 1, #src do dst[#dst + 1] = src[i] end
end

-- Put back the leases whose deadline is <= now, ordered by (deadline, task
-- id); at most `limit` of them (nil: all). Re-inserted latest first so the
-- earliest ends at the head of its key. Returns {tid, body, ...} earliest
-- first, and {tid, body, ...} of corrupt leases (dropped).
local function reclaim(now, limit)
    local due
    if limit then
        due = redis.call('ZRANGEBYSCORE', LEASES, '-inf', now, 'LIMIT', 0, limit)
        if #due == 0 then return due, {} end
    else
        due = redis.call('ZRANGEBYSCORE', LEASES, '-inf', now)
    end
    local _, vt = stats()
    local bodies = {}
    local corrupt = {}
    for i = #due, 1, -1 do
        local tid = due[i]
        redis.call('ZREM', LEASES, tid)
        local body = redis.call('HGET', TASKS, tid)
        local hk, exp = parse(body)
        if hk then
            put_back(tid, hk, exp, vt)
            bodies[i] = body
        else
            redis.call('HDEL', TASKS, tid)
            bodies[i] = false
            table.insert(corrupt, tid)
            table.insert(corrupt, body or '')
        end
    end
    local out = {}
    for i = 1, #due do
        if bodies[i] then
            table.insert(out, due[i])
            table.insert(out, bodies[i])
        end
    end
    return out, corrupt
end

-- Finish a lease and append the task, with a new body, to the tail of its
-- key (a retry); see requeue.lua for the replies and the retry flag.
local function requeue_task(tid, hk, body, retry, exp)
    if redis.call('ZSCORE', LEASES, tid) then
        redis.call('ZREM', LEASES, tid)
        redis.call('HSET', TASKS, tid, body)
        index_expiry(tid, hk, exp)
        if redis.call('RPUSH', qkey(hk), tid) == 1 then
            local _, vt = stats()
            activate(hk, vt)
        end
        notify(1)
        return __REQUEUE_DONE__
    end
    if retry == '1' and redis.call('HEXISTS', TASKS, tid) == 1 then return __REQUEUE_ALREADY__ end
    return __REQUEUE_NOT_LEASED__
end

-- Wake-up tokens (ranch-core's "Wake-ups"). Waiting = tasks stored but not leased.
local function n_waiting()
    return redis.call('HLEN', TASKS) - redis.call('ZCARD', LEASES)
end

-- Mint up to `limit` tokens (ids nonce .. i) into FLIGHT with `deadline`,
-- while fewer are in flight than tasks wait and fewer than m are outstanding.
-- `floor` (optional) is a number of tasks known to wait (a push's own): the
-- usual "no" (m outstanding already) then costs one ZCARD, and the waiting
-- count is read only when it could change the answer.
local function mint(nonce, deadline, m, limit, floor)
    local out = {}
    local f = redis.call('ZCARD', FLIGHT)
    if f >= m then return out end
    local h = redis.call('ZCARD', HELD)
    if f + h >= m then return out end
    local w = floor or 0
    if f + limit > w then w = n_waiting() end
    while #out < limit and f < w and f + h < m do
        local tok = nonce .. (#out + 1)
        redis.call('ZADD', FLIGHT, deadline, tok)
        f = f + 1
        out[#out + 1] = tok
    end
    return out
end

-- Drop a held token and its binding; false if it was not held.
local function unhold(tok)
    if redis.call('ZREM', HELD, tok) == 0 then return false end
    local task = redis.call('HGET', BOUND, tok)
    redis.call('HDEL', BOUND, tok)
    if task and task ~= '' and redis.call('HGET', HOLDER, task) == tok then redis.call('HDEL', HOLDER, task) end
    return true
end

-- A token after its call: kept (held, unbound) while tasks wait if asked; else
-- passed on while more tasks wait than tokens are in flight; else retired.
local function hand_back(tok, deadline, m, keep)
    -- Held, or retired meanwhile (its deadline passed) and not in flight again; kept only
    -- while under the bound (a bound that shrank, sized to the fleet, retires the excess).
    local have = unhold(tok) or not redis.call('ZSCORE', FLIGHT, tok)
    have = have and redis.call('ZCARD', FLIGHT) + redis.call('ZCARD', HELD) < m
    if have and keep and n_waiting() > 0 then
        redis.call('ZADD', HELD, deadline, tok)
        redis.call('HSET', BOUND, tok, '')
        return __TOKEN_KEPT__
    end
    if have and n_waiting() > redis.call('ZCARD', FLIGHT) then
        redis.call('ZADD', FLIGHT, deadline, tok)
        return __TOKEN_PASSED__
    end
    return __TOKEN_RETIRED__
end
