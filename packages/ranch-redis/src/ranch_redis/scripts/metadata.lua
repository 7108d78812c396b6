-- metadata: {waiting tasks of the key, default concurrency limit, default
-- rate text, delayed calls of the key, calls running ('' = the hash's field
-- r), field, value, ...} of its state hash (the defaults '' = none).
-- ARGV: hex key, now ('' = expired tasks not yet dropped count too).
-- A string key's counts are its group's (common.lua, "Two-level keys"):
-- its own list and expiry index plus the group's sums of its pairs (gq,
-- gd, the expiry index ykey) and the group's running count r, so O(log N),
-- not O(pairs); also when only pairs of the group were used (its hash then
-- holds only the group's fields). Its controls are the group's.
local hk = ARGV[1]
local s = load()
local pending = redis.call('LLEN', qkey(hk))
if ARGV[2] ~= '' then pending = pending - redis.call('ZCOUNT', xkey(hk), '-inf', ARGV[2]) end
local delayed = 0
if s.ctl then delayed = redis.call('ZCARD', dkey(hk)) end
local state = redis.call('HGETALL', kkey(hk))
local _, hm = split(hk)
if hm == '' then
    local sums = redis.call('HMGET', kkey(hk), 'gq', 'gd')
    pending = pending + (whole(sums[1]) or 0)
    if ARGV[2] ~= '' then pending = pending - redis.call('ZCOUNT', ykey(hk), '-inf', ARGV[2]) end
    if s.ctl then delayed = delayed + (whole(sums[2]) or 0) end
end
local out = {math.max(pending, 0), s.dl or '', s.dr and s.dr.text or '', delayed, ''}
extend(out, state)
return out
