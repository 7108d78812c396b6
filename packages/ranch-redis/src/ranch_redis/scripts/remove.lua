-- remove: delete a waiting (or delayed) task of a key. ARGV: hex key, task id.
-- Reply: __DONE__, or __NOT_FOUND__ if the task is not waiting in that key.
local hk, tid = ARGV[1], ARGV[2]
local body = redis.call('HGET', TASKS, tid)
local bhk, exp = parse(body)
if not body or bhk ~= hk then return __NOT_FOUND__ end
if redis.call('ZSCORE', LEASES, tid) then return __NOT_FOUND__ end
if ctl_on() and redis.call('ZREM', DELAYED, tid) == 1 then
    redis.call('ZREM', dkey(hk), tid)
    add_sum(hk, 'gd', -1)
    redis.call('HDEL', TASKS, tid)
    return __DONE__
end
local q = qkey(hk)
-- From the tail: a producer whose publish failed removes what it just pushed.
if redis.call('LREM', q, -1, tid) == 0 then return __NOT_FOUND__ end
redis.call('HDEL', TASKS, tid)
unindex_expiry(tid, hk, exp)
settle_after(hk, -1, nil)
return __DONE__
