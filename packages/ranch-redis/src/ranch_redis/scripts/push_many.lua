-- push_many: append tasks of one key to its tail, in order, set the key's
-- weight and tags, activate the key and mint at most one wake-up token: one
-- step, all tasks or none; wake up to n blocked pops. (push.lua is the
-- one-task case, in fewer commands.)
-- ARGV: retry ('1' = a retry of a call whose reply was lost), weight ('' =
--       keep), key (the user's, for the tag index), number of tags, then
--       per tag: name, hex name, value; then m (max_wakeups, '' = no
--       tokens), token nonce, token deadline, hex key, number of tasks n,
--       then per task: task id, body, expires_at ('' = never).
-- Reply: {__PUSH_STORED__, minted token id...}; {__PUSH_ALREADY_STORED__}
-- (a retry found its own earlier write: the first task's identical body);
-- {__PUSH_DUPLICATE__} (a task id is waiting or leased: nothing written,
-- no weight, no tag); {__PUSH_FULL__, stored calls (waiting and delayed), max_backlog} (the
-- batch does not fit the key's max backlog: nothing written). Once
-- controls are in use the key is settled as in push.lua (at the last
-- task's enqueued_at).
local retry, w, ukey, ntags = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local at = 5 + 3 * ntags
local m, nonce, deadline, hk, n = ARGV[at], ARGV[at + 1], ARGV[at + 2], ARGV[at + 3], tonumber(ARGV[at + 4])
local first = at + 5
local ids, fields, exps = {}, {}, {}
for j = 0, n - 1 do
    local tid, body, exp = ARGV[first + 3 * j], ARGV[first + 3 * j + 1], ARGV[first + 3 * j + 2]
    ids[#ids + 1] = tid
    extend(fields, {tid, body})
    if exp ~= '' then extend(exps, {exp, tid}) end
end
local olds = redis.call('HMGET', TASKS, unpack(ids))
for j = 1, n do
    if olds[j] then
        if retry == '1' and j == 1 and olds[1] == ARGV[first + 1] then return {__PUSH_ALREADY_STORED__} end
        return {__PUSH_DUPLICATE__}
    end
end
local c
if ctl_on() then
    c = controls().key_controls(hk)
    local len, most, group = backlog_full(hk, c, n)
    if len then return {__PUSH_FULL__, len, most, group} end
end
redis.call('HSET', TASKS, unpack(fields))
local kf = {}
if w ~= '' then extend(kf, {'w', w}) end
for t = 0, ntags - 1 do
    local a = 5 + 3 * t
    extend(kf, {'t:' .. ARGV[a], ARGV[a + 2]})
    redis.call('HSET', BASE .. 'tag:' .. ARGV[a + 1], ukey, ARGV[a + 2])
end
if #kf > 0 then redis.call('HSET', kkey(hk), unpack(kf)) end
if #exps > 0 then
    redis.call('ZADD', EXPIRY, unpack(exps))
    redis.call('ZADD', xkey(hk), unpack(exps))
    local hg, hm = split(hk)
    if hm ~= '' then redis.call('ZADD', ykey(hg), unpack(exps)) end
end
joined(hk, n)
if c and c.g then c.g.gq = c.g.gq + n end  -- read before the calls joined its group's sum
local len = redis.call('RPUSH', qkey(hk), unpack(ids))
counted(hk, len)
local gained = n
if c and controls().controlled(c) then
    gained = controls().settle(hk, c, len, len > n and not c.parked, n, controls().enqueued_at(ARGV[first + 3 * (n - 1) + 1]))
else
    if len == n then activate(hk, load().vt) end
    -- notify(n), but a full list of marks stays as it is: one LLEN, no LPUSH + LTRIM
    if redis.call('LLEN', WAKE) < __NOTIFY_BOUND__ then notify(n) end
end
local out = {__PUSH_STORED__}
if m ~= '' then extend(out, mint(nonce, deadline, tonumber(m), 1, math.max(gained, 0))) end
return out
