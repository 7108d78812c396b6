-- metadata: {waiting tasks of the key, default concurrency limit, default
-- rate text, delayed calls of the key, calls running ('' = the hash's field
-- r), field, value, ...} of its state hash (the defaults '' = none).
-- ARGV: hex key, now ('' = expired tasks not yet dropped count too).
-- A string key's counts cover its group's pairs too (common.lua,
-- "Two-level keys"; O(pairs of the group)), also when only pairs of the
-- group were used (its hash then holds only the group's fields).
local hk = ARGV[1]
local s = load()
local function count(h)
    local n = redis.call('LLEN', qkey(h))
    if ARGV[2] ~= '' then n = n - redis.call('ZCOUNT', xkey(h), '-inf', ARGV[2]) end
    local d = 0
    if s.ctl then d = redis.call('ZCARD', dkey(h)) end
    return n, d
end
local pending, delayed = count(hk)
local state = redis.call('HGETALL', kkey(hk))
local running = ''
local _, hm = split(hk)
if hm == '' then
    local members = redis.call('SMEMBERS', gkey(hk))
    if #members > 0 then
        running = whole(redis.call('HGET', kkey(hk), 'r')) or 0
        for _, m in ipairs(members) do
            local h = hk .. ':' .. m
            local n, d = count(h)
            pending, delayed = pending + n, delayed + d
            running = running + (whole(redis.call('HGET', kkey(h), 'r')) or 0)
        end
    end
end
local out = {pending, s.dl or '', s.dr and s.dr.text or '', delayed, running}
extend(out, state)
return out
