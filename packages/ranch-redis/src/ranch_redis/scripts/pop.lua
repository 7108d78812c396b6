-- pop: reclaim due leases, move keys whose bucket refilled back and delayed
-- calls that are due to their keys, then serve the head of the first ready
-- key (the first group of ACTIVE, then its first ready member: common.lua,
-- "Two-level keys") that may start a call; the group and the key are each
-- charged at their own weight.
-- ARGV: now, deadline (now + lease); optionally the wake-up token ('' =
--   none), m (max_wakeups), token nonce, token deadline (now + ttl), defer
--   ('1' = the caller can publish a delayed wake-up: keep the token for the
--   time a rate-limited call may start); then the first estimate of a
--   pop that charges by run time ('' or absent: charge the weight; see
--   common.lua, settle_charge).
-- Reply: the flat array {state, tid, body, #expired, #reclaimed, #minted,
--   expired tid, body, ..., reclaimed tid, body, ..., minted token id, ...,
--   corrupt tid, body, ...} (only the first three when nothing was
--   expired, reclaimed, minted or corrupt).
-- state: __POP_SERVED__ = served tid; __POP_EMPTY__ = no call may start
-- now: tid is then the earliest time a key parked by its rate becomes
-- eligible or a delayed call is due ('' = none) and body '1' if the token
-- was deferred until then;
-- __POP_AGAIN__ = stopped early after EXPIRED_BATCH expired or corrupt
-- tasks (pop again; the token is left as it was); __POP_STALE__ = the
-- token may not pop (held for a running task, or unknown while m tokens
-- are outstanding): nothing done.
-- Serving a call wakes one more blocked pop if calls still wait, or, if
-- none do and this lease ends first, makes blocked pops look again.
-- A token not held marks the broker queue as moving (MOTION, for
-- sweep_wakeups.lua). With a token: it becomes held, bound to the served task (score = the
-- lease deadline), and up to FANOUT tokens are minted; if nothing may
-- start, it is deferred (see defer) or retired; with expired calls
-- dropped and nothing served it is left as it was (the caller pops again).
-- Every field read (stats, the key's weight and served total) is checked
-- before it is used; a corrupt one takes its safe default (common.lua).
-- Keys with controls (common.lua, "Per-key controls"): a key on top
-- that may not start a call now (a default changed since it was
-- placed) is parked and the next one taken; a served key that may not
-- start another is parked (or idles) instead of going back into ACTIVE.
local now_s, deadline = ARGV[1], ARGV[2]
local now = tonumber(now_s)
local tok, max_wakeups = ARGV[3] or '', tonumber(ARGV[4] or '')
local first_estimate = ARGV[8] or ''
local s = load()
if tok ~= '' then
    local usable
    if redis.call('ZSCORE', HELD, tok) then
        usable = redis.call('HGET', BOUND, tok) == ''
    else
        -- A wake-up came from the broker: its queue moves (sweep_wakeups.lua).
        redis.call('HSET', MOTION, 'moved', now_s, 'rounds', 0)
        usable = redis.call('ZSCORE', FLIGHT, tok)
            or (s.ctl and redis.call('ZSCORE', DEFERRED, tok))
            or redis.call('ZCARD', FLIGHT) + redis.call('ZCARD', HELD) + n_deferred() < max_wakeups
    end
    if not usable then return {__POP_STALE__, '', ''} end
end
local minted = {}
if s.ctl and s.ck ~= now then
    s.ck = now
    redis.call('HSET', STATS, 'ck', now_s)
end
local reclaimed, corrupt = reclaim(now_s, __RECLAIM_BATCH__)
local K = s.ctl and controls()
if K then
    K.unpark_due(now, __UNPARK_BATCH__)
    promote_due(now, __UNPARK_BATCH__)
end
local expired = {}
local dropped = 0
local seq, _, n_expired = stats()
local expired_before = n_expired

local function reply(state, tid, body)
    if #expired + #reclaimed + #corrupt + #minted == 0 then return {state, tid, body} end
    local out = {state, tid, body, #expired / 2, #reclaimed / 2, #minted}
    extend(out, expired)
    extend(out, reclaimed)
    extend(out, minted)
    extend(out, corrupt)
    return out
end

local function count_expired()
    if n_expired ~= expired_before then redis.call('HSET', STATS, 'expired', n_expired) end
end

while true do
    local top = redis.call('ZPOPMIN', ACTIVE)
    if #top == 0 then
        count_expired()
        local at, deferred = '', ''
        local later = s.ctl and retry_at()
        if later then at = fmt(later) end
        if tok ~= '' and #expired == 0 then
            if later and ARGV[7] == '1' and defer(tok, later) then deferred = '1' else retire(tok) end
        end
        return reply(__POP_EMPTY__, at, deferred)
    end
    -- The first group, then its first ready member (common.lua, "Two-level
    -- keys"): its own string key if it has no ready pair (gr = 0), else the
    -- first of its members' zset. Each score is the pass (kept equal to the
    -- state's field).
    local gm, gps = top[1], top[2]
    local hg = string.sub(gm, 17)
    local g = kkey(hg)
    local M = mkey(hg)
    local gc  -- the group's hash: its own member's controls too
    if K then
        gc = K.key_controls(hg)
    else
        local f = redis.call('HMGET', g, 'w', 'n', 's', 'r', 'hs', 'ms', 'mp', 'gr', 'gv', 'gq')
        gc = {w = f[1], n = f[2], s = f[3], running = whole(f[4]) or 0, hs = f[5], ms = f[6], mp = f[7],
              gr = f[8], gv = f[9], gq = whole(f[10]) or 0}
    end
    local gr = ready_pairs(hg, gc.gr, gc.ms)
    local hm, mm, mps = '', false, nil
    local stale = whole(gc.s) and member(gc.s, hg) ~= gm
    if K and not stale and K.blocked(gc, now) then
        -- The group may not start a call now (a default changed since it
        -- was placed): parked out of ACTIVE, its members stay; next.
        K.settle_group(hg, gc, now)
    else
        if gr > 0 and not stale then
            local mtop = redis.call('ZPOPMIN', M)
            if #mtop > 0 then
                mm, mps = mtop[1], mtop[2]
                hm = string.sub(mm, 17)
            else
                -- Damage: the count says a pair is ready, the zset holds none.
                gr = 0
                redis.call('HSET', g, 'gr', 0)
            end
        end
        if not mm then mps = fmt(stored_pass(gc.mp, num(gc.gv) or 0)) end
        local own = hm == ''
        local hk = hg
        local c = gc
        if not own then
            hk = hg .. ':' .. hm
            if K then
                c = K.key_controls(hk, gc)
            else
                local f = redis.call('HMGET', kkey(hk), 'w', 'n', 's', 'r', 'hs')
                c = {w = f[1], n = f[2], s = f[3], running = whole(f[4]) or 0, hs = f[5]}
            end
        end
        local q = qkey(hk)
        local k = kkey(hk)
        local ctl = K and K.controlled(c)
        local ms = c.s
        if own then ms = gc.ms end
        -- An entry whose sequence is not its state's (valid) one is a stale
        -- duplicate left by damage: it is only removed.
        if mm and whole(ms) and member(ms, hm) ~= mm then stale = true end
        local tid = false
        if not stale and not (ctl and K.blocked(c, now)) then tid = redis.call('LPOP', q) end
        local remaining
        local body, bhk, exp
        if tid then
            remaining = redis.call('LLEN', q)
            counted(hk, remaining)
            body = redis.call('HGET', TASKS, tid)
            bhk, exp = parse(body)
            if remaining == 0 then redis.call('SREM', KEYSET, hk) end
        end
        if tid and bhk == hk and (exp == '' or now < tonumber(exp)) then
            -- Served: the group is charged its weight among the groups, the
            -- key its own among the group's members (a string key's: 1).
            local gwt = weight(gc.w) or 1
            local wt = 1
            if not own then wt = weight(c.w) or 1 end
            local ngp, np
            if first_estimate == '' then
                ngp, np = fmt(tonumber(gps) + gwt), fmt(tonumber(mps) + wt)
            else
                -- Charged by run time: the key's average, else the namespace's, else the first estimate.
                local est = num(redis.call('HGET', k, 're')) or num(redis.call('HGET', STATS, 'ra'))
                    or tonumber(first_estimate)
                ngp, np = fmt(tonumber(gps) + est * gwt), fmt(tonumber(mps) + est * wt)
                redis.call('HSET', RC, tid, fmt(now) .. ' ' .. fmt(est) .. ' ' .. fmt(gwt) .. ' ' .. fmt(wt))
                if not s.rt then
                    s.rt = true
                    redis.call('HSET', STATS, 'rn', '1')
                end
            end
            seq = seq + 1
            local w = waited(hk, body, now)
            s.hs = s.hs + w
            if n_expired ~= expired_before then
                redis.call('HSET', STATS, 'seq', seq, 'vt', gps, 'hs', fmt(s.hs), 'expired', n_expired)
            else
                redis.call('HSET', STATS, 'seq', seq, 'vt', gps, 'hs', fmt(s.hs))
            end
            s.seq, s.vt = seq, tonumber(gps)
            local ready = remaining > 0
            -- The call counts at both levels (the own member has no controls: c is its group's).
            if ctl then
                K.start(c, now)
                if not own then K.start(gc, now) end
            else
                c.running = c.running + 1
                if not own then gc.running = gc.running + 1 end
            end
            local served = (whole(c.n) or 0) + 1
            local hs = fmt((num(c.hs) or 0) + w)
            c.s = seq
            if ready and ctl and not own and K.blocked(c, now) then ready = false end
            -- A group that may not start another call leaves ACTIVE (settle parks it).
            local gblocked = ctl and K.blocked(gc, now)
            gc.s, gc.p = seq, ngp
            -- The group stays while a member is ready.
            local gready = ready
            if ready and mm then
                redis.call('ZADD', M, np, member(seq, hm))
            elseif mm then
                gready = left_members(hg, not own, {gc.s, gr, gc.ms})
            end
            if own then
                redis.call('HSET', k, 'p', ngp, 's', seq, 'l', now_s, 'n', served, 'r', c.running, 'hs', hs,
                           'gv', mps, 'mp', np, 'ms', seq)
            else
                redis.call('HSET', k, 'p', np, 's', seq, 'l', now_s, 'n', served, 'r', c.running, 'hs', hs)
                gc.gq = math.max(gc.gq - 1, 0)
                redis.call('HSET', g, 'p', ngp, 's', seq, 'l', now_s, 'n', (whole(gc.n) or 0) + 1, 'gv', mps,
                           'r', gc.running, 'gq', gc.gq)
            end
            redis.call('ZADD', KN, served, hk)
            -- Pass the wake-up on while calls wait (more waiters than the
            -- marks of a burst); else a lease that ends first wakes them.
            if gready and gblocked then gready = false end
            if gready or redis.call('ZCARD', ACTIVE) > 0 then
                notify(1)
            else
                notify_deadline(deadline)
            end
            redis.call('ZADD', LEASES, deadline, tid)
            redis.call('HSET', STARTED, tid, now_s)
            unindex_expiry(tid, hk, exp)
            if gready then redis.call('ZADD', ACTIVE, ngp, member(seq, hg)) end
            -- Parked at its cap or by its rate, or idle; or recounted.
            if ctl then K.settle(hk, c, remaining, ready, -1, now) end
            if tok ~= '' then
                redis.call('ZREM', FLIGHT, tok)
                if s.ctl then redis.call('ZREM', DEFERRED, tok) end
                unhold(tok)
                redis.call('ZADD', HELD, deadline, tok)
                redis.call('HSET', BOUND, tok, tid)
                redis.call('HSET', HOLDER, tid, tok)
                minted = mint(ARGV[5], ARGV[6], max_wakeups, __FANOUT__)
            end
            return reply(__POP_SERVED__, tid, body)
        end
        -- Not served (rare): the entries go back first, so the steps below see
        -- the indexes as they were; a stale entry stays removed.
        if mm and not (stale and whole(ms) and member(ms, hm) ~= mm) then redis.call('ZADD', M, mps, mm) end
        if not (whole(gc.s) and member(gc.s, hg) ~= gm) then redis.call('ZADD', ACTIVE, gps, gm) end
        if tid then
            -- Dropped without charging the key: it keeps its place.
            moved(hk, -1)
            if not own then gc.gq = math.max(gc.gq - 1, 0) end
            redis.call('HDEL', TASKS, tid)
            redis.call('ZREM', EXPIRY, tid)
            unindex_key_expiry(hk, {tid})
            if remaining == 0 then unready(hk) end
            if ctl then K.settle(hk, c, remaining, remaining > 0, -1, now) end
            if bhk ~= hk then
                extend(corrupt, {tid, body or ''})
            else
                n_expired = n_expired + 1
                count_metric(k, 'me')
                extend(expired, {tid, body})
            end
            dropped = dropped + 1
            if dropped >= __EXPIRED_BATCH__ then
                count_expired()
                return reply(__POP_AGAIN__, '', '')
            end
        elseif stale then
            -- (its entry removed above)
        elseif ctl and K.blocked(c, now) then
            -- Not eligible (a default changed since it was placed): parked, once.
            K.settle(hk, c, redis.call('LLEN', q), true, 0, now)
        else
            -- No task behind a ready key means the index was damaged: it stays removed.
            deactivate(hk)
            counted(hk, 0)
        end
    end
end
