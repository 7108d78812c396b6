-- metadata: {waiting tasks of the key, default concurrency limit, default
-- rate text, delayed calls of the key, field, value, ...} of its state hash
-- (the defaults '' = none).
-- ARGV: hex key, now ('' = expired tasks not yet dropped count too).
local hk = ARGV[1]
local s = load()
local pending = redis.call('LLEN', qkey(hk))
if ARGV[2] ~= '' then pending = pending - redis.call('ZCOUNT', xkey(hk), '-inf', ARGV[2]) end
local delayed = 0
if s.ctl then delayed = redis.call('ZCARD', dkey(hk)) end
local out = {pending, s.dl or '', s.dr and s.dr.text or '', delayed}
extend(out, redis.call('HGETALL', kkey(hk)))
return out
