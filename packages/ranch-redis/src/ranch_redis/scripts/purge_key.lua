-- purge_key: delete up to `limit` calls of a key: waiting ones from its
-- head, then its delayed ones, earliest due first. A string key purges its
-- whole group (its controls are the group's): its own calls first, then each
-- pair member's (waiting, then delayed) in key order (hex member order is
-- the members' code point order), until `limit` calls are deleted; O(the
-- group's pairs) for the walk over them (gkey).
-- ARGV: hex key, limit.
-- Reply: {tid, body, ...} of the calls deleted (body '' if its record was
-- gone). Leased calls are not in the key's list: they run. The key is
-- settled at the latest time a step was given (stats field ck).
local hk, limit = ARGV[1], tonumber(ARGV[2])
local out = {}

local function purge(key)
    local ids = redis.call('LPOP', qkey(key), limit)
    if ids then
        local bodies = redis.call('HMGET', TASKS, unpack(ids))
        redis.call('HDEL', TASKS, unpack(ids))
        redis.call('ZREM', EXPIRY, unpack(ids))
        unindex_key_expiry(key, ids)
        settle_after(key, -#ids, nil)
        for i = 1, #ids do extend(out, {ids[i], bodies[i] or ''}) end
        limit = limit - #ids
    end
    if limit > 0 and ctl_on() then
        local later = redis.call('ZRANGE', dkey(key), 0, limit - 1)
        if #later > 0 then
            local bodies = redis.call('HMGET', TASKS, unpack(later))
            redis.call('HDEL', TASKS, unpack(later))
            redis.call('ZREM', DELAYED, unpack(later))
            redis.call('ZREM', dkey(key), unpack(later))
            add_sum(key, 'gd', -#later)
            for i = 1, #later do extend(out, {later[i], bodies[i] or ''}) end
            limit = limit - #later
        end
    end
end

purge(hk)
local _, hm = split(hk)
if hm == '' and limit > 0 then
    local members = redis.call('SMEMBERS', gkey(hk))
    table.sort(members)
    for _, m in ipairs(members) do
        if limit <= 0 then break end
        purge(hk .. ':' .. m)
    end
end
return out
