-- charge: add extra to the key's pass: a pair's among its group's members,
-- a string key's (its group's) among the groups. ARGV: hex key, extra.
-- Reply: __DONE__. A corrupt pass counts as virtual time (common.lua).
-- Only a ready entry moves (ZADD XX): a group or key that is not ready
-- comes back at max(pass, virtual time).
local hk = ARGV[1]
local hg, hm = split(hk)
local k = kkey(hk)
local st = redis.call('HMGET', k, 'p', 's')
local _, vt = stats()
if hm ~= '' then vt = num(redis.call('HGET', kkey(hg), 'gv')) or 0 end
local p = fmt(stored_pass(st[1], vt) + tonumber(ARGV[2]))
-- With a corrupt serve sequence the entry cannot be named: its place is
-- left alone (this charge then only counts from the next serve).
if hm == '' then
    redis.call('HSET', k, 'p', p)
    if whole(st[2]) or not st[2] then redis.call('ZADD', ACTIVE, 'XX', p, member(st[2], hg)) end
else
    redis.call('HSET', k, 'p', p)
    if whole(st[2]) or not st[2] then redis.call('ZADD', mkey(hg), 'XX', p, member(st[2], hm)) end
end
return __DONE__
