-- purge_key: delete up to `limit` calls of a key: waiting ones from its
-- head, then its delayed ones, earliest due first.
-- ARGV: hex key, limit.
-- Reply: {tid, body, ...} of the calls deleted (body '' if its record was
-- gone). Leased calls are not in the key's list: they run. The key is
-- settled at the latest time a step was given (stats field ck).
local hk, limit = ARGV[1], tonumber(ARGV[2])
local out = {}
local ids = redis.call('LPOP', qkey(hk), limit)
if ids then
    local bodies = redis.call('HMGET', TASKS, unpack(ids))
    redis.call('HDEL', TASKS, unpack(ids))
    redis.call('ZREM', EXPIRY, unpack(ids))
    unindex_key_expiry(hk, ids)
    settle_after(hk, -#ids, nil)
    for i = 1, #ids do extend(out, {ids[i], bodies[i] or ''}) end
    limit = limit - #ids
end
if limit > 0 and ctl_on() then
    local later = redis.call('ZRANGE', dkey(hk), 0, limit - 1)
    if #later > 0 then
        local bodies = redis.call('HMGET', TASKS, unpack(later))
        redis.call('HDEL', TASKS, unpack(later))
        redis.call('ZREM', DELAYED, unpack(later))
        redis.call('ZREM', dkey(hk), unpack(later))
        add_sum(hk, 'gd', -#later)
        for i = 1, #later do extend(out, {later[i], bodies[i] or ''}) end
    end
end
return out
