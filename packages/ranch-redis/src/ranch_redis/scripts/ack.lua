-- ack: finish a leased task. ARGV: task id.
-- Reply: __DONE__, or __NOT_FOUND__ if not leased.
-- One call of its key less running; a key parked at its cap comes back
-- (settled at the latest time a step was given, stats field ck).
local tid = ARGV[1]
if redis.call('ZREM', LEASES, tid) == 0 then return __NOT_FOUND__ end
local hk = parse(redis.call('HGET', TASKS, tid))
redis.call('HDEL', TASKS, tid)
redis.call('HDEL', STARTED, tid)  -- no time given: no run time counted
settle_charge(tid, hk, nil, nil, false)  -- nor charged: the estimate stands
if hk then lease_ended(hk, 0, nil, nil) end
return __DONE__
