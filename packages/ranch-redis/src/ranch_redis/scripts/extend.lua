-- extend: move a lease's deadline. ARGV: task id, deadline.
-- Reply: __DONE__, or __NOT_FOUND__ if not leased.
-- (ZADD XX CH would answer 0 for an unchanged deadline, hence the ZSCORE.)
local tid = ARGV[1]
if not redis.call('ZSCORE', LEASES, tid) then return __NOT_FOUND__ end
redis.call('ZADD', LEASES, ARGV[2], tid)
return __DONE__
