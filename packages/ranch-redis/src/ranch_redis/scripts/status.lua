-- status: O(1) counters. ARGV: base.
local st = redis.call('HMGET', STATS, 'waiting', 'expired', 'served')
return {st[1] or 0, redis.call('ZCARD', ACTIVE), redis.call('ZCARD', LEASES), st[2] or 0, st[3] or 0}
