-- push: append a task to the tail of its key; activate the key.
-- ARGV: task id, hex key, body, weight ('' = keep), retry ('1' = a retry)
-- Returns 1 (stored), 2 (a retry found its own earlier write), 0 (duplicate id).
local tid, hk, body, weight = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
if redis.call('HSETNX', TASKS, tid, body) == 0 then
    if ARGV[5] == '1' and redis.call('HGET', TASKS, tid) == body then return 2 end
    return 0
end
if weight ~= '' then redis.call('HSET', kkey(hk), 'w', weight) end
if redis.call('RPUSH', qkey(hk), tid) == 1 then activate(hk) end
return 1
