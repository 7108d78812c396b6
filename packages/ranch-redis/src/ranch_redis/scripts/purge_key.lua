-- purge_key: delete up to `limit` waiting calls of a key, from its head.
-- ARGV: hex key, limit.
-- Reply: {tid, body, ...} of the calls deleted (body '' if its record was
-- gone). Leased calls are not in the key's list: they run. The key is
-- settled at the latest time a step was given (stats field ck).
local hk, limit = ARGV[1], tonumber(ARGV[2])
local ids = redis.call('LPOP', qkey(hk), limit)
if not ids then return {} end
local bodies = redis.call('HMGET', TASKS, unpack(ids))
redis.call('HDEL', TASKS, unpack(ids))
redis.call('ZREM', EXPIRY, unpack(ids))
redis.call('ZREM', xkey(hk), unpack(ids))
settle_after(hk, -#ids, nil)
local out = {}
for i = 1, #ids do extend(out, {ids[i], bodies[i] or ''}) end
return out
