-- remove: delete a waiting task of a key. ARGV: hex key, task id.
-- Returns 1, or 0 if the task is not waiting in that key.
local hk, tid = ARGV[1], ARGV[2]
local body = redis.call('HGET', TASKS, tid)
if not body or parse(body) ~= hk then return 0 end
if redis.call('ZSCORE', LEASES, tid) then return 0 end
local q = qkey(hk)
-- From the tail: a producer whose publish failed removes what it just pushed.
if redis.call('LREM', q, -1, tid) == 0 then return 0 end
redis.call('HDEL', TASKS, tid)
if redis.call('LLEN', q) == 0 then deactivate(hk) end
return 1
