-- wakeups: the namespace's tokens. ARGV: none.
-- Reply: {in flight, held}.
return {redis.call('ZCARD', FLIGHT), redis.call('ZCARD', HELD)}
