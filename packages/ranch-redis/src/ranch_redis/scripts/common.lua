-- Shared by every ranch-redis script (prepended when the script is loaded).
--
-- KEYS[1] is the namespace's stats hash "ranch:{<namespace>}:stats"; every
-- Redis key a script touches starts with the same prefix, so all of them
-- share one hash slot (undeclared keys of that slot are fine on a cluster).
-- Floats arrive as Python repr() strings and leave as '%.17g' (or as Redis
-- formats a score): both round-trip a double exactly, so the arithmetic here
-- matches the Python reference. Replies are flat arrays: nested ones cost the
-- Python client far more to parse.
-- Each redis.call() costs about a microsecond, so scripts make few of them.
local STATS = KEYS[1]
local BASE = string.sub(STATS, 1, -6)
local ACTIVE = BASE .. 'active'  -- zset: score = pass, member = %016x(seq) .. hexkey
local LEASES = BASE .. 'leases'  -- zset: score = deadline, member = task id
local TASKS = BASE .. 'tasks'    -- hash: task id -> body (waiting and leased tasks)
-- STATS hash: seq (serve sequence = served total), vt (virtual time), expired.
-- Waiting tasks = HLEN TASKS - ZCARD LEASES.

local function qkey(hk) return BASE .. 'q:' .. hk end  -- list of task ids, head first
local function kkey(hk) return BASE .. 'k:' .. hk end  -- hash of the key's state

local function fmt(x) return string.format('%.17g', x) end

local function member(seq, hk)
    return string.format('%016x', tonumber(seq) or 0) .. hk
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
    if exp ~= '' and tonumber(exp) == nil then return nil end
    return string.sub(body, c2 + 1, c3 - 1), exp
end

-- A key that turns active starts at max(own pass, virtual time).
local function activate(hk)
    local k = kkey(hk)
    local st = redis.call('HMGET', k, 'p', 's')
    local p = tonumber(st[1]) or 0
    local vt = tonumber(redis.call('HGET', STATS, 'vt')) or 0
    if vt > p then p = vt end
    local ps = fmt(p)
    redis.call('HSET', k, 'p', ps)
    redis.call('ZADD', ACTIVE, ps, member(st[2], hk))
end

local function deactivate(hk)
    redis.call('ZREM', ACTIVE, member(redis.call('HGET', kkey(hk), 's'), hk))
end

-- Put a task back at the head of its key.
local function put_back(tid, hk)
    if redis.call('LPUSH', qkey(hk), tid) == 1 then activate(hk) end
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
    local bodies = {}
    local corrupt = {}
    for i = #due, 1, -1 do
        local tid = due[i]
        redis.call('ZREM', LEASES, tid)
        local body = redis.call('HGET', TASKS, tid)
        local hk = parse(body)
        if hk then
            put_back(tid, hk)
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
