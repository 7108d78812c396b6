-- push_delayed: store delayed calls of one key, due at one time (Celery
-- countdown/eta, Dramatiq delay): in TASKS, DELAYED and the key's dkey zset,
-- not in its list; set the key's weight and tags; one step, all tasks or
-- none. pop.lua and sweep_wakeups.lua move them to their key when due
-- (promote_due in common.lua). Marks the namespace (stats field ctl) so the
-- steps that count and move delayed calls run from now on.
-- ARGV: retry ('1' = a retry of a call whose reply was lost), weight ('' =
--       keep), key (the user's, for the tag index), number of tags, then
--       per tag: name, hex name, value; then m (max_wakeups, '' = no
--       tokens), token nonce, defer ('1' = the caller can publish a delayed
--       wake-up), hex key, due time, number of tasks n, then per task: task
--       id, body.
-- Reply: {__PUSH_STORED__} or {__PUSH_STORED__, token id}: a token deferred
-- to the due time, minted with defer unless a token is deferred to that time
-- or sooner or m are outstanding (publish it with that delay);
-- {__PUSH_ALREADY_STORED__}, {__PUSH_DUPLICATE__}, {__PUSH_FULL__, stored
-- calls, max_backlog} as push_many.lua.
local retry, w, ukey, ntags = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local at = 5 + 3 * ntags
local m, nonce, may_defer, hk = ARGV[at], ARGV[at + 1], ARGV[at + 2], ARGV[at + 3]
local due, n = ARGV[at + 4], tonumber(ARGV[at + 5])
local first = at + 6
local ids, fields, scored = {}, {}, {}
for j = 0, n - 1 do
    local tid, body = ARGV[first + 2 * j], ARGV[first + 2 * j + 1]
    ids[#ids + 1] = tid
    extend(fields, {tid, body})
    extend(scored, {due, tid})
end
local olds = redis.call('HMGET', TASKS, unpack(ids))
for j = 1, n do
    if olds[j] then
        if retry == '1' and j == 1 and olds[1] == ARGV[first + 1] then return {__PUSH_ALREADY_STORED__} end
        return {__PUSH_DUPLICATE__}
    end
end
local s = load()
if s.ctl then
    local c = controls().key_controls(hk)
    local len, most, group = backlog_full(hk, c, n)
    if len then return {__PUSH_FULL__, len, most, group} end
else
    s.ctl = true
    redis.call('HSET', STATS, 'ctl', '1')
end
local earliest = retry_at()
redis.call('HSET', TASKS, unpack(fields))
redis.call('ZADD', DELAYED, unpack(scored))
redis.call('ZADD', dkey(hk), unpack(scored))
joined(hk, 0, n)
local kf = {}
if w ~= '' then extend(kf, {'w', w}) end
for t = 0, ntags - 1 do
    local a = 5 + 3 * t
    extend(kf, {'t:' .. ARGV[a], ARGV[a + 2]})
    redis.call('HSET', BASE .. 'tag:' .. ARGV[a + 1], ukey, ARGV[a + 2])
end
if #kf > 0 then redis.call('HSET', kkey(hk), unpack(kf)) end
-- Blocked pops sleep at most until the earliest due time: look again.
if earliest == nil or tonumber(due) < earliest then notify(1) end
local out = {__PUSH_STORED__}
if m ~= '' and may_defer == '1' then
    local outstanding = redis.call('ZCARD', FLIGHT) + redis.call('ZCARD', HELD) + redis.call('ZCARD', DEFERRED)
    if outstanding < tonumber(m) and #redis.call('ZRANGEBYSCORE', DEFERRED, '-inf', due, 'LIMIT', 0, 1) == 0 then
        local tok = nonce .. '1'
        redis.call('ZADD', DEFERRED, due, tok)
        out[2] = tok
    end
end
return out
