-- push: append one task to the tail of its key, set the key's weight and
-- tags, activate the key and mint at most one wake-up token: one step. The
-- one-task case of push_many.lua in fewer commands (HSETNX is the duplicate
-- check; the token decision usually ends after one ZCARD, see mint()), as
-- every lru_delay / lru_send runs it.
-- ARGV: task id, hex key, body, m (max_wakeups, '' = no tokens), token
--       nonce, token deadline, then what most pushes leave out (absent =
--       ''): weight ('' = keep), retry ('1' = a retry), expires_at ('' =
--       never), key (the user's, for the tag index), then per tag: name,
--       hex name, value.
-- Reply: __PUSH_STORED__ (nothing minted) or the minted token id (stored);
-- __PUSH_ALREADY_STORED__ (a retry found its own earlier, identical write);
-- __PUSH_DUPLICATE__ (the id is waiting or leased: nothing written, no
-- weight, no tag); {__PUSH_FULL__, stored calls (waiting and delayed),
-- max_backlog} (the key is full: nothing written).
-- Once controls are in use (stats field ctl) the key's controls are read
-- first: its max backlog, and where it belongs (settled at the task's
-- enqueued_at: a paused or capped key's push makes nothing runnable and
-- mints nothing).
local tid, hk, body, w = ARGV[1], ARGV[2], ARGV[3], ARGV[7] or ''
local c
if ctl_on() then
    c = controls().key_controls(hk)
    local len, most, group = backlog_full(hk, c, 1)
    if len then
        local old = redis.call('HGET', TASKS, tid)
        if old then
            if ARGV[8] == '1' and old == body then return __PUSH_ALREADY_STORED__ end
            return __PUSH_DUPLICATE__
        end
        return {__PUSH_FULL__, len, most, group}
    end
end
if redis.call('HSETNX', TASKS, tid, body) == 0 then
    if ARGV[8] == '1' and redis.call('HGET', TASKS, tid) == body then return __PUSH_ALREADY_STORED__ end
    return __PUSH_DUPLICATE__
end
local fields = {}
if w ~= '' then extend(fields, {'w', w}) end
for i = 11, #ARGV, 3 do
    extend(fields, {'t:' .. ARGV[i], ARGV[i + 2]})
    redis.call('HSET', BASE .. 'tag:' .. ARGV[i + 1], ARGV[10], ARGV[i + 2])
end
if #fields > 0 then redis.call('HSET', kkey(hk), unpack(fields)) end
index_expiry(tid, hk, ARGV[9] or '')
joined(hk, 1)
if c and c.g then c.g.gq = c.g.gq + 1 end  -- read before the call joined its group's sum
local n = redis.call('RPUSH', qkey(hk), tid)
counted(hk, n)
local gained = 1
if c and controls().controlled(c) then
    gained = controls().settle(hk, c, n, n > 1 and not c.parked, 1, controls().enqueued_at(body))
else
    if n == 1 then activate(hk, load().vt) end
    -- notify(1), but a full list of marks stays as it is: one LLEN, no LPUSH + LTRIM
    if redis.call('LLEN', WAKE) < __NOTIFY_BOUND__ then notify(1) end
end
if ARGV[4] ~= '' then
    local out = mint(ARGV[5], ARGV[6], tonumber(ARGV[4]), 1, math.max(gained, 0))
    if #out > 0 then return out[1] end
end
return __PUSH_STORED__
