-- metadata: {waiting tasks of the key, field, value, ...} of its state hash. ARGV: hex key.
local hk = ARGV[1]
local out = {redis.call('LLEN', qkey(hk))}
extend(out, redis.call('HGETALL', kkey(hk)))
return out
