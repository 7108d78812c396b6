-- sweep_wakeups: retire held tokens whose deadline is <= now (dead workers),
-- then in-flight tokens whose deadline is <= now (lost messages) unless every
-- registered worker slot holds a token (a late token then waits for a busy
-- fleet; replacing it would pile up no-op wake-ups), then mint
-- min(m - outstanding, waiting - in flight) tokens.
-- ARGV: now, m (max_wakeups), token nonce, token deadline (now + ttl).
-- Reply: {minted token id...}.
local now, m = ARGV[1], tonumber(ARGV[2])
local dead = redis.call('ZRANGEBYSCORE', HELD, '-inf', now)
for i = 1, #dead do unhold(dead[i]) end
local slots = 0
local live = redis.call('ZRANGEBYSCORE', WORKERS, '(' .. now, '+inf')
if #live > 0 then
    local counts = redis.call('HMGET', SLOTS, unpack(live))
    for i = 1, #counts do slots = slots + (tonumber(counts[i]) or 0) end
end
if slots == 0 or redis.call('ZCARD', HELD) < slots then
    redis.call('ZREMRANGEBYSCORE', FLIGHT, '-inf', now)
end
return mint(ARGV[3], ARGV[4], m, m)
