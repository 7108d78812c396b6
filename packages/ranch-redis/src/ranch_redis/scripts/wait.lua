-- wait: the check before a blocked pop. Nothing is written unless nothing
-- is runnable; then the notification list is emptied (its marks are all
-- stale) and the caller blocks on it (BLPOP) until a step pushes a mark or
-- the earliest lease deadline, or the earliest time a key parked by its
-- rate becomes eligible or a delayed call is due, passes. A step that makes a call runnable
-- after this script pushes a mark, so no wake-up is lost between the check
-- and the BLPOP.
-- ARGV: now.
-- Reply: {__WAIT_READY__, ''} (a key is ready, or a lease deadline or a
-- parked key's time is <= now: pop now); {__WAIT_BLOCK__, the earliest of
-- those times or ''}.
if redis.call('ZCARD', ACTIVE) > 0 then return {__WAIT_READY__, ''} end
local first = redis.call('ZRANGE', LEASES, 0, 0, 'WITHSCORES')
local until_ = first[2]
local later = retry_at()
if later and (not until_ or later < tonumber(until_)) then until_ = fmt(later) end
if until_ and tonumber(until_) <= tonumber(ARGV[1]) then return {__WAIT_READY__, ''} end
redis.call('DEL', WAKE)
return {__WAIT_BLOCK__, until_ or ''}
