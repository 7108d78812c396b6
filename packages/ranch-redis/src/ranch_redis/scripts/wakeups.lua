-- wakeups: the namespace's tokens. ARGV: none.
-- Reply: {in flight, held, deferred}.
return {redis.call('ZCARD', FLIGHT), redis.call('ZCARD', HELD), redis.call('ZCARD', DEFERRED)}
