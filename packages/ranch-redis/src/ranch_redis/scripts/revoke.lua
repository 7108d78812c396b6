-- revoke: delete one waiting (or delayed) call, wherever its key.
-- ARGV: task id.
-- Reply: {__DONE__, body}, or {__NOT_FOUND__} if no call of that id waits
-- (leased, unknown, or its record unreadable: pop deals with those). The
-- call is found in its key's list from the tail (LREM: O(position)); its
-- key is settled at the latest time a step was given (stats field ck).
local tid = ARGV[1]
local body = redis.call('HGET', TASKS, tid)
local hk, exp = parse(body)
if not hk or redis.call('ZSCORE', LEASES, tid) then return {__NOT_FOUND__} end
if ctl_on() and redis.call('ZREM', DELAYED, tid) == 1 then
    -- A delayed call: out of the delayed set, not in its key's list yet.
    redis.call('ZREM', dkey(hk), tid)
    add_sum(hk, 'gd', -1)
    redis.call('HDEL', TASKS, tid)
    return {__DONE__, body}
end
if redis.call('LREM', qkey(hk), -1, tid) == 0 then return {__NOT_FOUND__} end
redis.call('HDEL', TASKS, tid)
unindex_expiry(tid, hk, exp)
settle_after(hk, -1, nil)
return {__DONE__, body}
