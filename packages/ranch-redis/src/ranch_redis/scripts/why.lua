-- why: where one call stands and what holds it, read in one step.
-- ARGV: task id.
-- Reply: {'missing'} if no call of that id is stored (it ran, was
--   revoked, purged or expired, or never was); {'corrupt'} if its record
--   cannot be read; {'running', hex key, lease deadline} if it is leased;
--   {'delayed', hex key, due time, enqueued_at, expires_at ('' = never)} if
--   it is a delayed call not yet due;
--   else {'waiting', hex key, enqueued_at, expires_at ('' = never),
--   position in its key (0 = head; '' = not in its list), the key's
--   waiting calls, the key's place in the fair order ('' = not in
--   ACTIVE), active keys in ACTIVE, parked keys, parked reason ('p', 'c',
--   'r' or ''), eligible at, paused ('1'/''), concurrency limit in force,
--   running, rate text in force, weight, '1' if what holds it is its
--   group's (a pair's call whose member may run but whose group, the string
--   key's controls, is paused, capped or rate-limited: the reason and the
--   controls are then the group's) else ''}.
-- O(log K) plus the call's position in its key's list (LPOS).
local tid = ARGV[1]
local body = redis.call('HGET', TASKS, tid)
if not body then return {'missing'} end
local hk, exp = parse(body)
if not hk then return {'corrupt'} end
local deadline = redis.call('ZSCORE', LEASES, tid)
if deadline then return {'running', hk, deadline} end
local s = load()
local enqueued_at = string.sub(body, 1, string.find(body, ',', 1, true) - 1)
local due = s.ctl and redis.call('ZSCORE', DELAYED, tid)
if due then return {'delayed', hk, due, enqueued_at, exp} end
local enqueued = string.sub(body, 1, string.find(body, ',', 1, true) - 1)
local pos = redis.call('LPOS', qkey(hk), tid) or ''
local fields = {'s', 'pk', 'ea', 'ps', 'cl', 'r', 'rt', 'w'}
local f = redis.call('HMGET', kkey(hk), unpack(fields))
local place, by_group = '', ''
local hg, hm = split(hk)
local gs = f[1]
if hm ~= '' then
    -- A pair: its member may run, its group (the string key's controls) may hold it.
    local gf = redis.call('HMGET', kkey(hg), unpack(fields))
    gs = gf[1]
    if not f[2] and gf[2] then
        by_group = '1'
        for i = 2, 7 do f[i] = gf[i] end
    end
end
if not f[2] then
    -- Its group's place (a string key's s is its group's).
    place = redis.call('ZRANK', ACTIVE, member(gs, hg)) or ''
end
local rate = f[7] or (s.dr and s.dr.text) or ''
return {'waiting', hk, enqueued, exp, pos, redis.call('LLEN', qkey(hk)), place, redis.call('ZCARD', ACTIVE) + s.xm,
        s.np, f[2] or '', f[3] or '', f[4] or '', f[5] or s.dl or '', f[6] or '0', rate, f[8] or '', by_group}
