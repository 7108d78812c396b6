-- tag: tag a key name=value and index it. ARGV: base, hex key, key, name, hex name, value.
redis.call('HSET', kkey(ARGV[2]), 't:' .. ARGV[4], ARGV[6])
redis.call('HSET', BASE .. 'tag:' .. ARGV[5], ARGV[3], ARGV[6])
return 1
