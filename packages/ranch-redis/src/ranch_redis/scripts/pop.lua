-- pop: reclaim due leases, then serve the head of the first active key.
-- ARGV: now, deadline (now + lease)
-- Returns the flat array {state, tid, body, #expired, #reclaimed,
--   expired tid, body, ..., reclaimed tid, body, ..., corrupt tid, body, ...}
-- state: 1 = served tid, 0 = nothing waiting, 2 = stopped early after
-- EXPIRED_BATCH expired or corrupt tasks (pop again).
local now_s, deadline = ARGV[1], ARGV[2]
local now = tonumber(now_s)
local reclaimed, corrupt = reclaim(now_s, __RECLAIM_BATCH__)
local expired = {}
local dropped = 0

local function reply(state, tid, body)
    if #expired + #reclaimed + #corrupt == 0 then return {state, tid, body} end
    local out = {state, tid, body, #expired / 2, #reclaimed / 2}
    extend(out, expired)
    extend(out, reclaimed)
    extend(out, corrupt)
    return out
end

while true do
    local top = redis.call('ZPOPMIN', ACTIVE)
    if #top == 0 then return reply(0, '', '') end
    -- The score is the key's pass (kept equal to field p of its state).
    local m, ps = top[1], top[2]
    local hk = string.sub(m, 17)
    local q = qkey(hk)
    local tid = redis.call('LPOP', q)
    -- No task behind an active key means the index was damaged: it stays removed.
    if tid then
        local remaining = redis.call('LLEN', q)
        local body = redis.call('HGET', TASKS, tid)
        local bhk, exp = parse(body)
        if bhk ~= hk or (exp ~= '' and now >= tonumber(exp)) then
            -- Dropped without charging the key: it keeps its place.
            redis.call('HDEL', TASKS, tid)
            if remaining > 0 then redis.call('ZADD', ACTIVE, ps, m) end
            if bhk ~= hk then
                extend(corrupt, {tid, body or ''})
            else
                redis.call('HINCRBY', STATS, 'expired', 1)
                extend(expired, {tid, body})
            end
            dropped = dropped + 1
            if dropped >= __EXPIRED_BATCH__ then return reply(2, '', '') end
        else
            local k = kkey(hk)
            local st = redis.call('HMGET', k, 'w', 'n')
            local np = fmt(tonumber(ps) + (tonumber(st[1]) or 1))
            local seq = redis.call('HINCRBY', STATS, 'seq', 1)
            redis.call('HSET', STATS, 'vt', ps)
            redis.call('HSET', k, 'p', np, 's', seq, 'l', now_s, 'n', (tonumber(st[2]) or 0) + 1)
            redis.call('ZADD', LEASES, deadline, tid)
            if remaining > 0 then redis.call('ZADD', ACTIVE, np, member(seq, hk)) end
            return reply(1, tid, body)
        end
    end
end
