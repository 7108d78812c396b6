-- expire: drop up to `limit` waiting tasks whose expiry is <= now, earliest
-- (expires_at, task id) first, without charging their keys; count them in
-- the stats' expired total.
-- ARGV: now, limit.
-- Reply: {n, tid, body, ...} of the n dropped tasks.
-- Each task is removed from its key's list from the head (LREM 1: the
-- oldest tasks are the ones that expire), so the cost is O(limit * log N)
-- plus each task's position in its key. An index entry whose record is
-- gone, unreadable or leased is only removed from the index: pop, reclaim
-- and ack deal with such records. A key with controls is settled at now
-- (common.lua, settle_after).
local due = redis.call('ZRANGEBYSCORE', EXPIRY, '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
if #due == 0 then return {0} end
local _, _, n_expired = stats()
local out = {0}
for i = 1, #due do
    local tid = due[i]
    local body = redis.call('HGET', TASKS, tid)
    local hk = parse(body)
    redis.call('ZREM', EXPIRY, tid)
    if hk then unindex_key_expiry(hk, {tid}) end
    if hk and not redis.call('ZSCORE', LEASES, tid) then
        local gone = redis.call('LREM', qkey(hk), 1, tid)
        redis.call('HDEL', TASKS, tid)
        settle_after(hk, -gone, tonumber(ARGV[1]))
        count_metric(kkey(hk), 'me')
        n_expired = n_expired + 1
        out[1] = out[1] + 1
        extend(out, {tid, body})
    end
end
if out[1] > 0 then redis.call('HSET', STATS, 'expired', n_expired) end
return out
