-- wait: the check before a blocked pop. Nothing is written unless nothing
-- is runnable; then the notification list is emptied (its marks are all
-- stale) and the caller blocks on it (BLPOP) until a step pushes a mark or
-- the earliest lease deadline passes. A step that makes a call runnable
-- after this script pushes a mark, so no wake-up is lost between the check
-- and the BLPOP.
-- ARGV: now.
-- Reply: {__WAIT_READY__, ''} (a key is active, or a lease deadline is
-- <= now: pop now); {__WAIT_BLOCK__, earliest lease deadline or ''}.
if redis.call('ZCARD', ACTIVE) > 0 then return {__WAIT_READY__, ''} end
local first = redis.call('ZRANGE', LEASES, 0, 0, 'WITHSCORES')
if #first > 0 and tonumber(first[2]) <= tonumber(ARGV[1]) then return {__WAIT_READY__, ''} end
redis.call('DEL', WAKE)
return {__WAIT_BLOCK__, first[2] or ''}
