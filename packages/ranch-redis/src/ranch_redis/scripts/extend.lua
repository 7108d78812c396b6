-- extend: move a lease's deadline. ARGV: base, task id, deadline. Returns 1, or 0 if not leased.
local tid = ARGV[2]
if not redis.call('ZSCORE', LEASES, tid) then return 0 end
redis.call('ZADD', LEASES, ARGV[3], tid)
return 1
