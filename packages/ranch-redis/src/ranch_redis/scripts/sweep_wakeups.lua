-- sweep_wakeups: retire tokens in flight and held whose deadline is <= now
-- (lost messages, dead workers), then mint min(m - outstanding, waiting -
-- in flight) tokens.
-- ARGV: now, m (max_wakeups), token nonce, token deadline (now + ttl).
-- Reply: {minted token id...}.
local now, m = ARGV[1], tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', FLIGHT, '-inf', now)
local dead = redis.call('ZRANGEBYSCORE', HELD, '-inf', now)
for i = 1, #dead do unhold(dead[i]) end
return mint(ARGV[3], ARGV[4], m, m)
