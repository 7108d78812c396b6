-- sweep_wakeups: retire held tokens whose deadline is <= now (dead workers),
-- then the lost tokens in flight, then mint min(m - outstanding, waiting -
-- in flight) tokens. A token in flight is lost when its deadline is <= now
-- and no wake-up was taken for one ttl (MOTION's `moved`: the broker queue
-- does not move), with a wait of ttl * 2^rounds between two such
-- retirements (rounds: since the last wake-up taken, at most
-- __MAX_BACKOFF__); while the queue moves, only __LOST_AFTER__ ttls past its
-- deadline (it is queued behind other messages). None is retired while every
-- registered worker slot holds a token (a late token then waits for a busy
-- fleet; replacing it would pile up no-op wake-ups).
-- With controls or delayed calls in use, first: keys whose bucket refilled
-- by now are moved back and delayed calls that are due join their keys (at
-- most __UNPARK_BATCH__ of each), and, after the dead held tokens, a
-- deferred token that is due goes in flight (deadline: due + ttl), as its
-- delayed wake-up is in the broker now. Minting counts runnable calls only.
-- ARGV: now, m (max_wakeups), token nonce, token deadline (now + ttl), ttl.
-- Reply: {minted token id...}.
local now, m = ARGV[1], tonumber(ARGV[2])
local t, ttl = tonumber(now), tonumber(ARGV[5])
local s = load()
if s.ctl then
    if s.ck ~= t then
        s.ck = t
        redis.call('HSET', STATS, 'ck', now)
    end
    controls().unpark_due(t, __UNPARK_BATCH__)
    promote_due(t, __UNPARK_BATCH__)
end
local dead = redis.call('ZRANGEBYSCORE', HELD, '-inf', now)
for i = 1, #dead do unhold(dead[i]) end
if s.ctl then
    local due = redis.call('ZRANGEBYSCORE', DEFERRED, '-inf', now, 'WITHSCORES')
    for i = 1, #due, 2 do
        redis.call('ZREM', DEFERRED, due[i])
        redis.call('ZADD', FLIGHT, fmt(tonumber(due[i + 1]) + ttl), due[i])
    end
end
local slots = 0
local live = redis.call('ZRANGEBYSCORE', WORKERS, '(' .. now, '+inf')
if #live > 0 then
    local counts = redis.call('HMGET', SLOTS, unpack(live))
    for i = 1, #counts do slots = slots + (tonumber(counts[i]) or 0) end
end
if slots == 0 or redis.call('ZCARD', HELD) < slots then
    local mo = redis.call('HMGET', MOTION, 'moved', 'rounds', 'retired')
    local moved = num(mo[1]) or -math.huge
    local rounds = math.min(whole(mo[2]) or 0, __MAX_BACKOFF__)
    local retired = num(mo[3]) or -math.huge
    local quiet = t - moved >= ttl
    if not (quiet and t - retired < ttl * 2 ^ rounds) then
        local cutoff = now
        if not quiet then cutoff = fmt(t - __LOST_AFTER__ * ttl) end
        local lost = redis.call('ZREMRANGEBYSCORE', FLIGHT, '-inf', cutoff)
        if lost > 0 and quiet then
            redis.call('HSET', MOTION, 'rounds', math.min(rounds + 1, __MAX_BACKOFF__), 'retired', now)
        end
    end
end
return mint(ARGV[3], ARGV[4], m, m)
