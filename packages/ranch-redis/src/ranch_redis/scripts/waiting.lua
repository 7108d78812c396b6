-- waiting: tasks waiting (not leased, not delayed). ARGV: now ('' = expired ones too).
-- O(1); O(log N) with now.
local waiting = n_waiting()
if ARGV[1] ~= '' then waiting = waiting - redis.call('ZCOUNT', EXPIRY, '-inf', ARGV[1]) end
return waiting
