-- status: counters {waiting, active keys, leased, expired, served, delayed}.
-- ARGV: now ('' = count expired tasks not yet dropped too).
-- O(1); O(log N) with now (tasks whose expiry is <= now are not waiting).
-- Active keys: the ready ones (groups in ACTIVE and their further ready
-- members, stats field xm) and those parked (stats field np).
-- Delayed calls (not yet due) are not waiting.
local s = load()
local leased = redis.call('ZCARD', LEASES)
local delayed = 0
if s.ctl then delayed = redis.call('ZCARD', DELAYED) end
local waiting = redis.call('HLEN', TASKS) - leased - delayed
if ARGV[1] ~= '' then waiting = waiting - redis.call('ZCOUNT', EXPIRY, '-inf', ARGV[1]) end
return {waiting, redis.call('ZCARD', ACTIVE) + s.xm + s.np, leased, s.expired, s.seq, delayed}
