-- charge: add extra to the key's pass. ARGV: hex key, extra.
-- Reply: __DONE__. A corrupt pass counts as virtual time (common.lua).
local hk = ARGV[1]
local k = kkey(hk)
local st = redis.call('HMGET', k, 'p', 's', 'pk')
local _, vt = stats()
local p = fmt(stored_pass(st[1], vt) + tonumber(ARGV[2]))
redis.call('HSET', k, 'p', p)
-- With a corrupt serve sequence the key's member cannot be named: its place
-- is left alone (this charge then only counts from the key's next serve).
-- A parked key is not in ACTIVE: it comes back at max(pass, virtual time).
if (whole(st[2]) or not st[2]) and not st[3] and redis.call('LLEN', qkey(hk)) > 0 then
    redis.call('ZADD', ACTIVE, p, member(st[2], hk))
end
return __DONE__
