-- requeue: finish a lease and append the task, with a new body, to the tail
-- of its key (a retry), in one step.
-- ARGV: task id, hex key, body (its enqueued_at makes it unique to this retry).
-- Returns 1 (requeued), 2 (a retry after a lost reply found its own write), 0 (not leased: nothing written).
local tid, hk, body = ARGV[1], ARGV[2], ARGV[3]
if redis.call('HGET', TASKS, tid) == body then return 2 end
if redis.call('ZREM', LEASES, tid) == 0 then return 0 end
redis.call('HSET', TASKS, tid, body)
if redis.call('RPUSH', qkey(hk), tid) == 1 then activate(hk) end
return 1
