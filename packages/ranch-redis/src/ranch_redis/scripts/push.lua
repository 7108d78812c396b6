-- push: append a task to the tail of its key; activate the key.
-- ARGV: base, task id, hex key, body, weight ('' = keep), retry ('1' = a retry)
-- Returns 1 (stored), 2 (a retry found its own earlier write), 0 (duplicate id).
local tid, hk, body, weight = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local existing = redis.call('HGET', TASKS, tid)
if existing then
    if ARGV[6] == '1' and existing == body then return 2 end
    return 0
end
redis.call('HSET', TASKS, tid, body)
if weight ~= '' then redis.call('HSET', kkey(hk), 'w', weight) end
local n = redis.call('RPUSH', qkey(hk), tid)
redis.call('HINCRBY', STATS, 'waiting', 1)
if n == 1 then activate(hk) end
return 1
