-- release: put a leased task back at the head of its key.
-- ARGV: task id. Returns 1, 0 if not leased, -1 if its record was corrupt (dropped).
local tid = ARGV[1]
if redis.call('ZREM', LEASES, tid) == 0 then return 0 end
local hk = parse(redis.call('HGET', TASKS, tid))
if not hk then
    redis.call('HDEL', TASKS, tid)
    return -1
end
put_back(tid, hk)
return 1
