-- charge: add extra to the key's pass. ARGV: hex key, extra.
local hk = ARGV[1]
local k = kkey(hk)
local st = redis.call('HMGET', k, 'p', 's')
local p = fmt((tonumber(st[1]) or 0) + tonumber(ARGV[2]))
redis.call('HSET', k, 'p', p)
if redis.call('LLEN', qkey(hk)) > 0 then
    redis.call('ZADD', ACTIVE, p, member(st[2], hk))
end
return 1
