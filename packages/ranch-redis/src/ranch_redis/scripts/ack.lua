-- ack: finish a leased task. ARGV: task id.
-- Reply: __DONE__, or __NOT_FOUND__ if not leased.
local tid = ARGV[1]
if redis.call('ZREM', LEASES, tid) == 0 then return __NOT_FOUND__ end
redis.call('HDEL', TASKS, tid)
return __DONE__
