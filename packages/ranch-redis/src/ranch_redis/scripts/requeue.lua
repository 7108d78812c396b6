-- requeue: finish a lease and append the task, with a new body, to the tail
-- of its key (a retry), in one step.
-- ARGV: task id, hex key, body, retry ('1' = this call is a retry of one
-- whose reply was lost), expires_at ('' = never).
-- Reply: __REQUEUE_DONE__ = requeued; __REQUEUE_ALREADY__ = already
-- requeued (a retry only, see below); __REQUEUE_NOT_LEASED__ = not leased,
-- nothing written.
--
-- The decision rests on the lease alone, never on the body: a retried call
-- whose body is byte-identical to the stored one (a frozen or coarse clock)
-- is still requeued. A retry after a lost reply finds no lease (the first
-- attempt finished it); if the task id then waits in its key, the call is
-- queued to run again, by the first attempt or by a lease reclaim: either
-- way "already requeued" is the truth for the caller, who must not queue it
-- a second time. Without the retry flag, "waiting but not leased" is
-- __REQUEUE_NOT_LEASED__ (the lease ran out and the task went back on its
-- own), as in the reference.
-- Limit: if the first attempt ran, and another worker popped the task again
-- before the retry arrived (within the retry backoff), the retry finishes
-- that worker's lease and appends the task again (it may run twice).
local tid, hk, body = ARGV[1], ARGV[2], ARGV[3]
if redis.call('ZSCORE', LEASES, tid) then
    redis.call('ZREM', LEASES, tid)
    redis.call('HSET', TASKS, tid, body)
    index_expiry(tid, hk, ARGV[5] or '')
    if redis.call('RPUSH', qkey(hk), tid) == 1 then
        local _, vt = stats()
        activate(hk, vt)
    end
    return __REQUEUE_DONE__
end
if ARGV[4] == '1' and redis.call('HEXISTS', TASKS, tid) == 1 then return __REQUEUE_ALREADY__ end
return __REQUEUE_NOT_LEASED__
