-- metadata: {waiting tasks of the key, field, value, ...} of its state hash.
-- ARGV: hex key, now ('' = expired tasks not yet dropped count too).
local hk = ARGV[1]
local pending = redis.call('LLEN', qkey(hk))
if ARGV[2] ~= '' then pending = pending - redis.call('ZCOUNT', xkey(hk), '-inf', ARGV[2]) end
local out = {pending}
extend(out, redis.call('HGETALL', kkey(hk)))
return out
