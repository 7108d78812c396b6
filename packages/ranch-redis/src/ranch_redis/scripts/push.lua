-- push: append a task to the tail of its key, set the key's weight and tags,
-- activate the key: one step.
-- ARGV: task id, hex key, body, weight ('' = keep), retry ('1' = a retry),
--       expires_at ('' = never), key (the user's, for the tag index),
--       then per tag: name, hex name, value.
-- Reply: __PUSH_STORED__; __PUSH_ALREADY_STORED__ (a retry found its own
-- earlier, identical write); __PUSH_DUPLICATE__ (the id is waiting or
-- leased: nothing written, no weight, no tag).
local tid, hk, body, w = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
if redis.call('HSETNX', TASKS, tid, body) == 0 then
    if ARGV[5] == '1' and redis.call('HGET', TASKS, tid) == body then return __PUSH_ALREADY_STORED__ end
    return __PUSH_DUPLICATE__
end
local fields = {}
if w ~= '' then extend(fields, {'w', w}) end
for i = 8, #ARGV, 3 do
    extend(fields, {'t:' .. ARGV[i], ARGV[i + 2]})
    redis.call('HSET', BASE .. 'tag:' .. ARGV[i + 1], ARGV[7], ARGV[i + 2])
end
if #fields > 0 then redis.call('HSET', kkey(hk), unpack(fields)) end
index_expiry(tid, hk, ARGV[6] or '')
if redis.call('RPUSH', qkey(hk), tid) == 1 then
    local _, vt = stats()
    activate(hk, vt)
end
notify(1)
return __PUSH_STORED__
