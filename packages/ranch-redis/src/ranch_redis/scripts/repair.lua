-- repair: one bounded step of the sweep that finds and fixes damage.
-- ARGV: limit (keys to check).
-- Reply: {cursor, hex key, field, stored value, ...}: one triple per fix
-- (hex key '' for the stats hash); cursor '0' when a full pass over the
-- keys ended with this step.
--
-- Checks the stats fields (seq, vt, expired) and then up to about `limit`
-- keys of the KEYSET (the keys whose list holds task ids), continuing an
-- SSCAN whose cursor lives in the stats field rc: the keyspace is never
-- scanned. Per key, the numeric fields p, s, w, n are checked (corrupt ones
-- get the scripts' safe defaults: p the key's score if it is active, else
-- virtual time; n 0; w is deleted, i.e. the default weight; s is taken
-- back from the key's member in the active set, which costs a ZSCAN of
-- that set: the one step that is O(active keys), and only for a corrupt s), and a
-- key whose list holds tasks but which is not in the active set (a step
-- that failed halfway in an older version, a hand edit) is activated again
-- (field 'active' in the reply); a key parked by its rate but missing
-- from PARKED is put back there (field 'parked'); a pair whose group is
-- parked by the group's controls is only made ready among its group's
-- members (the group stays out of ACTIVE); a corrupt group sum (gq, gd,
-- gx) is counted again over the group's pairs. The controls' fields and
-- stats nr, np, ck are checked as numbers too. A key in KEYSET with an empty list is
-- dropped from KEYSET silently. Keys holding tasks that are missing from
-- KEYSET (written before ranch-redis kept it) are not found.
local limit = tonumber(ARGV[1])
local out = {'0'}
local st = redis.call('HMGET', STATS, 'seq', 'vt', 'expired', 'nr', 'np', 'ck', 'rc')
local fix = {}
for i, field in ipairs({'seq', 'vt', 'expired', 'nr', 'np', 'ck'}) do
    local raw = st[i]
    local ok = (field == 'vt' or field == 'ck') and num(raw) or whole(raw)
    if raw and not ok then
        extend(fix, {field, 0})
        extend(out, {'', field, raw})
    end
end
if #fix > 0 then redis.call('HSET', STATS, unpack(fix)) end
local vt = num(st[2]) or 0
local cursor = st[7]
if not whole(cursor) then cursor = '0' end
local scan = redis.call('SSCAN', KEYSET, cursor, 'COUNT', limit)
out[1] = scan[1]
redis.call('HSET', STATS, 'rc', scan[1])
for _, hk in ipairs(scan[2]) do
    local waiting = redis.call('LLEN', qkey(hk))
    counted(hk, waiting)
    if waiting == 0 then
        redis.call('SREM', KEYSET, hk)
    else
        local k = kkey(hk)
        local hg, hm = split(hk)
        local ks = redis.call('HMGET', k, 'p', 's', 'w', 'n', 'r', 'ct', 'cl', 'mb', 'ta', 'ea', 'pk', 'rr', 'rb', 'br', 'bb', 'ms')
        -- A string key's p and s are its group's (its place in ACTIVE), a pair's its own (in its group's members).
        local index, name = ACTIVE, hg
        if hm ~= '' then index, name = mkey(hg), hm end
        local kfix = {}
        -- The controls' fields (common.lua, "Per-key controls"): a corrupt
        -- running count is reset to 0, any other corrupt field removed (a
        -- corrupt setting: the key has none; a rate with it, whole).
        if ks[5] and not whole(ks[5]) then
            extend(kfix, {'r', 0})
            extend(out, {hk, 'r', ks[5]})
        end
        local drop = {}
        local checks = {
            {6, 'ct', whole(ks[6])}, {7, 'cl', whole(ks[7]) and whole(ks[7]) >= 1},
            {8, 'mb', whole(ks[8])}, {9, 'ta', num(ks[9])}, {10, 'ea', num(ks[10])},
            {11, 'pk', controls().PARK_REASONS[ks[11] or '']},
        }
        for _, check in ipairs(checks) do
            if ks[check[1]] and not check[3] then
                drop[#drop + 1] = check[2]
                extend(out, {hk, check[2], ks[check[1]]})
            end
        end
        if ks[12] and not controls().rate_of_fields(ks[12], ks[13]) then
            extend(drop, {'rr', 'rb', 'rt'})
            extend(out, {hk, 'rr', ks[12]})
        end
        if ks[14] and not controls().rate_of_fields(ks[14], ks[15]) then
            extend(drop, {'br', 'bb', 'bt', 'ta'})
            extend(out, {hk, 'br', ks[14]})
        end
        if #drop > 0 then redis.call('HDEL', k, unpack(drop)) end
        local parked = controls().PARK_REASONS[ks[11] or ''] and ks[11]
        if ks[2] and not whole(ks[2]) then
            -- The key's member cannot be named without its sequence: look it
            -- up by its hex key (a scan of the active set, only in this case)
            -- and take the sequence back from it; 0 if the key is not active.
            local seq, cur = 0, '0'
            repeat
                local page = redis.call('ZSCAN', index, cur, 'MATCH', string.rep('?', 16) .. name, 'COUNT', 1000)
                cur = page[2] and page[1] or '0'
                if page[2][1] then seq = tonumber(string.sub(page[2][1], 1, 16), 16) end
            until cur == '0'
            extend(kfix, {'s', seq})
            extend(out, {hk, 's', ks[2]})
            ks[2] = seq
        end
        local score = redis.call('ZSCORE', index, member(ks[2], name))
        if ks[1] and not num(ks[1]) then
            extend(kfix, {'p', score or fmt(vt)})
            extend(out, {hk, 'p', ks[1]})
        end
        if ks[3] and not weight(ks[3]) then
            redis.call('HDEL', k, 'w')
            extend(out, {hk, 'w', ks[3]})
        end
        if ks[4] and not whole(ks[4]) then
            extend(kfix, {'n', 0})
            extend(out, {hk, 'n', ks[4]})
        end
        if #kfix > 0 then redis.call('HSET', k, unpack(kfix)) end
        -- Ready: the group in ACTIVE, and the key in its group's members
        -- (a string key whose group has no ready pair (gr 0) has no entry there).
        local gf = redis.call('HMGET', kkey(hg), 's', 'p', 'gr', 'ms', 'pk', 'gq', 'gd', 'gx')
        -- The group's sums (common.lua, add_sum): a corrupt one is counted
        -- again over the group's pairs (gkey: O(pairs), only in this case).
        local sums = {gq = gf[6], gd = gf[7], gx = gf[8]}
        local bad = false
        for field, raw in pairs(sums) do
            if raw and not whole(raw) then
                bad = true
                extend(out, {hg, field, raw})
            end
        end
        if bad then
            local gq, gd, gx = 0, 0, 0
            for _, m in ipairs(redis.call('SMEMBERS', gkey(hg))) do
                local pk = hg .. ':' .. m
                local len = redis.call('LLEN', qkey(pk))
                local ct = whole(redis.call('HGET', kkey(pk), 'ct'))
                gq = gq + len
                gd = gd + redis.call('ZCARD', dkey(pk))
                if ct then gx = gx + math.max(len - ct, 0) end
            end
            redis.call('HSET', kkey(hg), 'gq', gq, 'gd', gd, 'gx', gx)
        end
        -- A pair whose group is parked by the group's controls (the string
        -- key's pk) is ready among its members; the group stays out of ACTIVE.
        local held = hm ~= '' and controls().PARK_REASONS[gf[5] or '']
        if gf[3] and not whole(gf[3]) then extend(out, {hg, 'gr', gf[3]}) end
        local gs = gf[1]
        local grouped = redis.call('ZSCORE', ACTIVE, member(gs, hg))
        local ready = grouped
        if hm ~= '' or ready_pairs(hg, gf[3], gf[4]) > 0 then
            ready = redis.call('ZSCORE', mkey(hg), member(hm == '' and gf[4] or ks[2], hm))
        end
        if not parked and held then
            if not ready then
                activate(hk, vt, true)
                extend(out, {hk, 'active', ''})
            end
        elseif not parked and not (ready and grouped) then
            if not ready then activate(hk, vt) end
            gs = redis.call('HGET', kkey(hg), 's')
            if not redis.call('ZSCORE', ACTIVE, member(gs, hg)) then
                local gp = stored_pass(redis.call('HGET', kkey(hg), 'p'), vt)
                redis.call('ZADD', ACTIVE, fmt(math.max(gp, vt)), member(gs, hg))
            end
            notify(1)
            extend(out, {hk, 'active', ''})
        elseif parked == 'r' and not redis.call('ZSCORE', PARKED, hk) then
            -- Parked by its rate but in no index: it comes back when its time is due.
            redis.call('ZADD', PARKED, num(ks[10]) and ks[10] or fmt(num(st[6]) or 0), hk)
            extend(out, {hk, 'parked', ''})
        end
    end
end
return out
