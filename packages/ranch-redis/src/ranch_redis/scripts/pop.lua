-- pop: reclaim due leases, then serve the head of the first active key.
-- ARGV: base, now, deadline (now + lease), reclaim batch, expired batch
-- Returns {state, tid, body, expired {tid, body, ...},
--          reclaimed {tid, body, ...}, corrupt {tid, body, ...}}
-- state: 1 = served tid, 0 = nothing waiting, 2 = stopped early after
-- expired_batch expired or corrupt tasks (pop again).
local now_s, deadline = ARGV[2], ARGV[3]
local now = tonumber(now_s)
local expired_batch = tonumber(ARGV[5])
local reclaimed, corrupt = reclaim(now_s, tonumber(ARGV[4]))
local expired = {}
local dropped = 0
while true do
    local top = redis.call('ZRANGE', ACTIVE, 0, 0)
    if #top == 0 then return {0, '', '', expired, reclaimed, corrupt} end
    local m = top[1]
    local hk = string.sub(m, 17)
    local q = qkey(hk)
    local tid = redis.call('LPOP', q)
    if not tid then
        -- An active key without tasks: the index was damaged; repair it.
        redis.call('ZREM', ACTIVE, m)
    else
        local remaining = redis.call('LLEN', q)
        redis.call('HINCRBY', STATS, 'waiting', -1)
        local body = redis.call('HGET', TASKS, tid)
        local bhk, exp = parse(body)
        if bhk ~= hk or (exp ~= '' and now >= tonumber(exp)) then
            redis.call('HDEL', TASKS, tid)
            if remaining == 0 then redis.call('ZREM', ACTIVE, m) end
            if bhk ~= hk then
                table.insert(corrupt, tid)
                table.insert(corrupt, body or '')
            else
                redis.call('HINCRBY', STATS, 'expired', 1)
                table.insert(expired, tid)
                table.insert(expired, body)
            end
            dropped = dropped + 1
            if dropped >= expired_batch then
                return {2, '', '', expired, reclaimed, corrupt}
            end
        else
            local k = kkey(hk)
            local st = redis.call('HMGET', k, 'p', 'w')
            local p = tonumber(st[1]) or 0
            local w = tonumber(st[2]) or 1
            redis.call('HSET', STATS, 'vt', fmt(p))
            local seq = redis.call('HINCRBY', STATS, 'seq', 1)
            redis.call('HINCRBY', STATS, 'served', 1)
            local np = fmt(p + w)
            redis.call('HSET', k, 'p', np, 's', seq, 'l', now_s)
            redis.call('HINCRBY', k, 'n', 1)
            redis.call('ZADD', LEASES, deadline, tid)
            redis.call('ZREM', ACTIVE, m)
            if remaining > 0 then redis.call('ZADD', ACTIVE, np, member(seq, hk)) end
            return {1, tid, body, expired, reclaimed, corrupt}
        end
    end
end
