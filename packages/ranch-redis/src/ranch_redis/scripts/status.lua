-- status: O(1) counters {waiting, active keys, leased, expired, served}.
local st = redis.call('HMGET', STATS, 'expired', 'seq')
local leased = redis.call('ZCARD', LEASES)
return {redis.call('HLEN', TASKS) - leased, redis.call('ZCARD', ACTIVE), leased, st[1] or 0, st[2] or 0}
