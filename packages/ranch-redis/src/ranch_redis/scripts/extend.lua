-- extend: move a lease's deadline, and that of the token held for it. ARGV: task id, deadline.
-- Reply: __DONE__, or __NOT_FOUND__ if not leased.
-- (ZADD XX CH would answer 0 for an unchanged deadline, hence the ZSCORE.)
local tid = ARGV[1]
if not redis.call('ZSCORE', LEASES, tid) then return __NOT_FOUND__ end
notify_deadline(ARGV[2])
redis.call('ZADD', LEASES, ARGV[2], tid)
local tok = redis.call('HGET', HOLDER, tid)
if tok then redis.call('ZADD', HELD, 'XX', ARGV[2], tok) end
return __DONE__
