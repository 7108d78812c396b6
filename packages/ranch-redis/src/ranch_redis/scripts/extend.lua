-- extend: move a lease's deadline. ARGV: task id, deadline. Returns 1, or 0 if not leased.
-- (ZADD XX CH would answer 0 for an unchanged deadline, hence the ZSCORE.)
local tid = ARGV[1]
if not redis.call('ZSCORE', LEASES, tid) then return 0 end
redis.call('ZADD', LEASES, ARGV[2], tid)
return 1
