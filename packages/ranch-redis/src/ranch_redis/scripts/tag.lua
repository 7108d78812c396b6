-- tag: tag a key name=value and index it. ARGV: hex key, key, name, hex name, value.
-- Reply: __DONE__.
redis.call('HSET', kkey(ARGV[1]), 't:' .. ARGV[3], ARGV[5])
redis.call('HSET', BASE .. 'tag:' .. ARGV[4], ARGV[2], ARGV[5])
return __DONE__
