-- ack: finish a leased task. ARGV: task id. Returns 1, or 0 if not leased.
local tid = ARGV[1]
if redis.call('ZREM', LEASES, tid) == 0 then return 0 end
redis.call('HDEL', TASKS, tid)
return 1
