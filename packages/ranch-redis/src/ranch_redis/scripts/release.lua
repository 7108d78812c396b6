-- release: put a leased task back at the head of its key.
-- ARGV: task id.
-- Reply: __DONE__; __NOT_FOUND__ if not leased; __RELEASE_CORRUPT__ if its
-- record was unreadable (the lease and the record are dropped).
local tid = ARGV[1]
if not redis.call('ZSCORE', LEASES, tid) then return __NOT_FOUND__ end
local hk, exp = parse(redis.call('HGET', TASKS, tid))
redis.call('ZREM', LEASES, tid)
settle_charge(tid, hk, nil, nil, false)  -- a released call keeps the estimate it was charged
if not hk then
    redis.call('HDEL', TASKS, tid)
    redis.call('HDEL', STARTED, tid)
    return __RELEASE_CORRUPT__
end
put_back(tid, hk, exp, nil)
return __DONE__
