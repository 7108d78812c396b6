-- waiting: tasks waiting (not leased). ARGV: now ('' = expired ones too).
-- O(1); O(log N) with now.
local waiting = redis.call('HLEN', TASKS) - redis.call('ZCARD', LEASES)
if ARGV[1] ~= '' then waiting = waiting - redis.call('ZCOUNT', EXPIRY, '-inf', ARGV[1]) end
return waiting
