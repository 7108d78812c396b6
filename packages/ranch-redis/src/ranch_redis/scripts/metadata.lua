-- metadata: the key's state hash and its number of waiting tasks. ARGV: base, hex key.
local hk = ARGV[2]
return {redis.call('HGETALL', kkey(hk)), redis.call('LLEN', qkey(hk))}
