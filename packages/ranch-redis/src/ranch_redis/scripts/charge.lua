-- charge: add extra to the key's pass. ARGV: hex key, extra.
-- Reply: __DONE__. A corrupt pass counts as virtual time (common.lua).
local hk = ARGV[1]
local k = kkey(hk)
local st = redis.call('HMGET', k, 'p', 's')
local _, vt = stats()
local p = fmt(stored_pass(st[1], vt) + tonumber(ARGV[2]))
if st[2] and not whole(st[2]) then
    redis.call('HSET', k, 'p', p, 's', 0)
else
    redis.call('HSET', k, 'p', p)
end
if redis.call('LLEN', qkey(hk)) > 0 then
    redis.call('ZADD', ACTIVE, p, member(st[2], hk))
end
return __DONE__
