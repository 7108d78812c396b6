-- Shared by every ranch-redis script (prepended when the script is loaded).
--
-- KEYS[1] is the namespace's stats hash "ranch:{<namespace>}:stats"; every
-- Redis key a script touches starts with the same prefix, so all of them
-- share one hash slot (undeclared keys of that slot are fine on a cluster).
-- The key layout is documented once, in ranch_redis/layout.py; reply codes
-- and limits are written in from Python when a script is loaded (each
-- script names them as double-underscored capitals).
-- Floats arrive as Python repr() strings and leave as '%.17g' (or as Redis
-- formats a score): both round-trip a double exactly, so the arithmetic here
-- matches the Python reference. Replies are flat arrays: nested ones cost the
-- Python client far more to parse.
-- Each redis.call() costs about a microsecond, so scripts make few of them.
--
-- Read before write: a script reads every field it depends on and checks it
-- before its first write. A field that is missing takes the reference's
-- default; a field that is present but not a usable number (corrupted by
-- hand, by another program, by an older bug) takes a safe default instead
-- (pass: virtual time, i.e. the key joins the current round; weight: 1;
-- counters and serve sequence: 0) and the value written back is valid. So a
-- corrupt field can never make a script fail halfway; repair.lua reports it.
local STATS = KEYS[1]
local BASE = string.sub(STATS, 1, -6)
local ACTIVE = BASE .. 'active'  -- zset of groups: score = group pass, member = %016x(group seq) .. hex group
local LEASES = BASE .. 'leases'  -- zset: score = deadline, member = task id
local TASKS = BASE .. 'tasks'    -- hash: task id -> body (waiting and leased tasks)
local EXPIRY = BASE .. 'expiry'  -- zset: score = expires_at, member = waiting task id
local KEYSET = BASE .. 'keys'    -- set: hex keys whose list holds task ids
local FLIGHT = BASE .. 'wf'      -- zset: wake-up tokens in flight, score = deadline
local HELD = BASE .. 'wh'        -- zset: tokens held by workers, score = deadline
local BOUND = BASE .. 'wb'       -- hash: held token -> the task id it runs ('' = kept)
local HOLDER = BASE .. 'wt'      -- hash: task id -> the token held for it
local WORKERS = BASE .. 'ww'     -- zset: registered workers, score = registration deadline
local SLOTS = BASE .. 'wn'       -- hash: registered worker -> its slots
local MOTION = BASE .. 'wq'      -- hash: moved (last wake-up taken), rounds, retired
local WAKE = BASE .. 'wake'      -- list: notification marks for blocked pops (BLPOP)
local PARKED = BASE .. 'parked'  -- zset: keys parked by their rate, score = eligible time, member = hex key
local DEFERRED = BASE .. 'wd'    -- zset: deferred wake-up tokens, score = the time they are due
local DELAYED = BASE .. 'delayed'  -- zset: delayed calls not yet due, score = due time, member = task id

local function qkey(hk) return BASE .. 'q:' .. hk end  -- list of task ids, head first
local function xkey(hk) return BASE .. 'x:' .. hk end  -- zset: the key's part of EXPIRY
local function kkey(hk) return BASE .. 'k:' .. hk end  -- hash of the key's state
local function dkey(hk) return BASE .. 'd:' .. hk end  -- zset: the key's part of DELAYED

-- Two-level keys (ranch-core README, "Two-level keys"; the reference is
-- ranch_core/backends/memory.py and testing/model.py). A key's hex `hk` is
-- '<hex group>' for a string key (the group's own member, member hex '')
-- or '<hex group>:<hex member>' for a pair (hex has no ':', so no pair
-- shares a name with a string key). ACTIVE holds the groups with a ready
-- member; mkey(hg) the group's ready members while one is a pair (score =
-- member pass, member = %016x(member seq) .. hex member: ties by seq, then
-- member, the own member first; see activate). A group's state lives in
-- its string key's hash kkey(hg): p, s, w, l, n are the group's (pass,
-- seq, weight, last served, served), gv the members' virtual time, gr its
-- ready pairs, mp and ms the own member's pass and seq (its weight is 1),
-- and the string key's controls, which are the group's (its r the group's
-- running calls; the sums gq, gd, gx: see add_sum and settle). A pair's
-- hash holds its own p, s, w, l, n (its place and weight among its group's
-- members) and its own controls. gkey(hg): the group's pair members (hex
-- member), walked by purge_key of the string key.
local function mkey(hg) return BASE .. 'm:' .. hg end
local function gkey(hg) return BASE .. 'g:' .. hg end
local function split(hk)
    local c = string.find(hk, ':', 1, true)
    if c then return string.sub(hk, 1, c - 1), string.sub(hk, c + 1) end
    return hk, ''
end
-- ykey(hg): the group's pairs' part of EXPIRY (metadata of the string key
-- counts the group's calls due to expire in O(log N)).
local function ykey(hg) return BASE .. 'y:' .. hg end

-- Per-group sums, in the group's hash kkey(hg), so that the string key's
-- metadata is O(1): gq counts the waiting calls of its pairs (the own
-- member's are its list's length), gd their delayed calls, r the calls of
-- every member leased now. Each step that changes a pair's list or delayed
-- calls adds the change (`field` 'gq' or 'gd', `d` calls) here; a corrupt
-- sum restarts from the change (repair.lua does not recount it).
local function add_sum(hk, field, d)
    if d == 0 then return end
    local hg, hm = split(hk)
    if hm == '' then return end
    local r = redis.pcall('HINCRBY', kkey(hg), field, d)
    if type(r) ~= 'number' or r < 0 then redis.call('HSET', kkey(hg), field, math.max(d, 0)) end
end
local function moved(hk, d) add_sum(hk, 'gq', d) end

-- A pair's calls are stored (`dq` waiting ones, `dd` delayed ones): its
-- group lists it (purge of the string key walks its pairs) and counts them.
local function joined(hk, dq, dd)
    local hg, hm = split(hk)
    if hm ~= '' then
        redis.call('SADD', gkey(hg), hm)
        add_sum(hk, 'gq', dq or 0)
        add_sum(hk, 'gd', dd or 0)
    end
end
-- The member's pass and seq fields in its hash kkey(hk).
local function member_fields(hm)
    if hm == '' then return 'mp', 'ms' end
    return 'p', 's'
end

-- Listing indexes (ranch keys, the exporter's top keys): KW holds each key
-- with waiting calls by its list's length, KN each served key by its served
-- total. Every step that changes a key's list calls counted(hk, n) with the
-- new length (one ZADD or ZREM); the repair sweep rewrites the entries it walks.
local KW = BASE .. 'kw'
local KN = BASE .. 'kn'
local STARTED = BASE .. 'st'  -- hash: leased task id -> the time its run started (run-time metric)
local RC = BASE .. 'rt'  -- hash: leased task id -> 'started estimate weight' charged by run time
local function counted(hk, n)
    if n > 0 then redis.call('ZADD', KW, n, hk) else redis.call('ZREM', KW, hk) end
end
-- Defined under "Metrics" at the end (used by requeue_task before that).
local count_metric
local ran

local function fmt(x) return string.format('%.17g', x) end

-- Appends the items of `src` (a flat list) to `dst`.
local function extend(dst, src)
    for i = 1, #src do dst[#dst + 1] = src[i] end
end

-- A finite number, or nil.
local function num(raw)
    local x = tonumber(raw)
    if x == nil or x ~= x or x == math.huge or x == -math.huge then return nil end
    return x
end

-- A whole number in [0, 2^53), or nil.
local function whole(raw)
    local x = num(raw)
    if x == nil or x < 0 or x >= 9007199254740992 or x ~= math.floor(x) then return nil end
    return x
end

-- A weight in [MIN_WEIGHT, MAX_WEIGHT], or nil.
local function weight(raw)
    local x = num(raw)
    if x == nil or x < __MIN_WEIGHT__ or x > __MAX_WEIGHT__ then return nil end
    return x
end

local function member(seq, hk)
    return string.format('%016x', whole(seq) or 0) .. hk
end

-- The group's ready pairs from its field gr; a corrupt count is taken back
-- from its members' zset (its size, less the own member's entry) and written.
local function ready_pairs(hg, raw, ms)
    if not raw then return 0 end
    local gr = whole(raw)
    if gr then return gr end
    local M = mkey(hg)
    gr = redis.call('ZCARD', M)
    if gr > 0 and redis.call('ZSCORE', M, member(ms, '')) then gr = gr - 1 end
    redis.call('HSET', kkey(hg), 'gr', gr)
    return gr
end

-- The stats hash, read once per script (one HMGET) and kept current by the
-- writes below: serve sequence, virtual time, expired total; the controls'
-- fields: ctl ('1' once any control was set: until then no step reads a
-- key's controls), the defaults (dl: concurrency limit; dr, db, dt: rate,
-- burst, text), nr (waiting calls not counted runnable: runnable = waiting
-- - nr), np (keys parked out of ACTIVE), ck (the latest time a step was
-- given, for the steps that take none).
-- A namespace without controls reads only the first four (a second HMGET
-- reads the rest once ctl is set).
local S
local controls
local function load()
    if S then return S end
    local st = redis.call('HMGET', STATS, 'seq', 'vt', 'expired', 'ctl', 'hs', 'rn', 'xm')
    S = {seq = whole(st[1]) or 0, vt = num(st[2]) or 0, expired = whole(st[3]) or 0, ctl = st[4] == '1',
         nr = 0, np = 0, ck = 0, plain = true, hs = num(st[5]) or 0, rt = st[6] == '1', xm = whole(st[7]) or 0}
    if S.ctl then
        st = redis.call('HMGET', STATS, 'dl', 'dr', 'db', 'dt', 'nr', 'np', 'ck')
        local dl = whole(st[1])
        if dl and dl < 1 then dl = nil end
        S.dl, S.dr = dl, controls().rate_of_fields(st[2], st[3], st[4])
        S.nr, S.np, S.ck = whole(st[5]) or 0, whole(st[6]) or 0, num(st[7]) or 0
        S.plain = S.dl == nil and S.dr == nil
    end
    return S
end

-- Whether controls are in use: the stats field ctl alone, unless the stats
-- were read already (a push or an ack of a namespace without controls reads
-- one field).
local CTL, RT
local function ctl_on()
    if S then return S.ctl end
    if CTL == nil then CTL = redis.call('HGET', STATS, 'ctl') == '1' end
    if CTL then load() end
    return CTL
end

-- Whether any pop charged by run time (stats field rn); read with ctl when
-- neither was read yet, so a step that ends a lease reads one field more
-- in one command.
local function rt_on()
    if S then return S.rt end
    if RT == nil then
        if CTL == nil then
            local f = redis.call('HMGET', STATS, 'ctl', 'rn')
            CTL, RT = f[1] == '1', f[2] == '1'
            if CTL then load() end
        else
            RT = redis.call('HGET', STATS, 'rn') == '1'
        end
    end
    if S then return S.rt end
    return RT
end

-- The stats fields every step may need: serve sequence, virtual time, expired total.
local function stats()
    local s = load()
    return s.seq, s.vt, s.expired
end

-- A key's pass from its stored field: 0 if never set, virtual time if corrupt.
local function stored_pass(raw, vt)
    if not raw then return 0 end
    return num(raw) or vt
end

-- body = "<enqueued_at>,<expires_at or empty>,<hex key>,<payload>"
-- Returns the hex key and the expiry string, or nil for a corrupt body.
local function parse(body)
    if type(body) ~= 'string' then return nil end
    local c1 = string.find(body, ',', 1, true)
    if not c1 then return nil end
    local c2 = string.find(body, ',', c1 + 1, true)
    if not c2 then return nil end
    local c3 = string.find(body, ',', c2 + 1, true)
    if not c3 or c3 == c2 + 1 then return nil end
    local exp = string.sub(body, c1 + 1, c2 - 1)
    if exp ~= '' and num(exp) == nil then return nil end
    return string.sub(body, c2 + 1, c3 - 1), exp
end

-- A task that starts waiting and expires goes into both expiry indexes.
-- (A pair's also into its group's ykey.)
local function index_expiry(tid, hk, exp)
    if exp ~= '' then
        redis.call('ZADD', EXPIRY, exp, tid)
        redis.call('ZADD', xkey(hk), exp, tid)
        local hg, hm = split(hk)
        if hm ~= '' then redis.call('ZADD', ykey(hg), exp, tid) end
    end
end

-- The key's own expiry indexes without EXPIRY (`ids`: a list of task ids).
local function unindex_key_expiry(hk, ids)
    redis.call('ZREM', xkey(hk), unpack(ids))
    local hg, hm = split(hk)
    if hm ~= '' then redis.call('ZREM', ykey(hg), unpack(ids)) end
end

local function unindex_expiry(tid, hk, exp)
    if exp ~= '' then
        redis.call('ZREM', EXPIRY, tid)
        unindex_key_expiry(hk, {tid})
    end
end

-- Ready members beyond one per ready group (stats field xm): active keys
-- = ZCARD ACTIVE + xm + np. A key space of strings never writes it.
local function extra_ready(d)
    local s = load()
    s.xm = math.max(s.xm + d, 0)
    redis.call('HSET', STATS, 'xm', s.xm)
end

-- A key that turns ready starts at max(own pass, its group's virtual time);
-- a group whose first member turns ready at max(group pass, virtual time).
-- The group's field gr counts its ready pairs: while it is 0 the group's
-- ready member, if any, is its own string key, which then has no entry in
-- mkey(hg) (it is ready iff the group is in ACTIVE): a key space of
-- strings never writes a members zset. With a ready pair, mkey(hg) holds
-- every ready member, the own one included. The own member has no controls
-- of its own: it is ready while its list holds calls, also while its group
-- is held out of ACTIVE by the group's controls (`hold`: the group may not
-- start a call now; it then does not join ACTIVE, settle places it).
local function activate(hk, vt, hold)
    local hg, hm = split(hk)
    local g = kkey(hg)
    local M = mkey(hg)
    local gf = redis.call('HMGET', g, 'p', 's', 'gv', 'mp', 'ms', 'gr')
    local gv = num(gf[3]) or 0
    local gr = ready_pairs(hg, gf[6], gf[5])
    local set, gset = {}, {}
    local mp, ms = gf[4], gf[5]
    if hm == '' then
        set = gset
    else
        local f = redis.call('HMGET', kkey(hk), 'p', 's')
        mp, ms = f[1], f[2]
    end
    local mpf, msf = member_fields(hm)
    local p = stored_pass(mp, gv)
    if gv > p then p = gv end
    local ps = fmt(p)
    extend(set, {mpf, ps})
    if ms and not whole(ms) then extend(set, {msf, 0}) end
    local group_turns = false
    if hm == '' then
        if gr == 0 then
            group_turns = true
        elseif redis.call('ZADD', M, ps, member(ms, hm)) == 1 then
            extra_ready(1)
        end
    elseif redis.call('ZADD', M, ps, member(ms, hm)) == 1 then
        extend(gset, {'gr', gr + 1})
        if gr > 0 then
            extra_ready(1)
        elseif redis.call('LLEN', qkey(hg)) > 0 then
            -- The own member was the group's ready one: it joins the zset.
            redis.call('ZADD', M, fmt(stored_pass(gf[4], gv)), member(gf[5], ''))
            extra_ready(1)
        else
            group_turns = true
        end
    end
    if group_turns and not hold then
        local gp = stored_pass(gf[1], vt)
        if vt > gp then gp = vt end
        local gps = fmt(gp)
        extend(gset, {'p', gps})
        if gf[2] and not whole(gf[2]) then extend(gset, {'s', 0}) end
        redis.call('ZADD', ACTIVE, gps, member(gf[2], hg))
    end
    if hm ~= '' then redis.call('HSET', kkey(hk), unpack(set)) end
    if #gset > 0 then redis.call('HSET', g, unpack(gset)) end
    redis.call('SADD', KEYSET, hk)
end

-- A member left mkey(hg) (`pair`: a pair, with the group's fields `gf` =
-- {s, gr, ms}): the group's count of ready pairs and xm follow; with its
-- last ready pair gone the own member, if ready, leaves the zset again.
-- Returns whether the group still has a ready member (it is not touched
-- in ACTIVE).
local function left_members(hg, pair, gf)
    local gr = whole(gf[2]) or 0
    if pair then
        gr = math.max(gr - 1, 0)
        redis.call('HSET', kkey(hg), 'gr', gr)
    end
    if gr > 0 then
        extra_ready(-1)
        return true
    end
    if pair and redis.call('ZREM', mkey(hg), member(gf[3], '')) == 1 then
        extra_ready(-1)
        return true
    end
    return not pair
end

-- The key leaves its group's ready members, and the group ACTIVE with its
-- last ready member.
local function unready(hk)
    local hg, hm = split(hk)
    local gf = redis.call('HMGET', kkey(hg), 's', 'gr', 'ms')
    local ready = true
    gf[2] = ready_pairs(hg, gf[2], gf[3])
    if hm == '' and gf[2] == 0 then
        ready = false
    else
        local ms = gf[3]
        if hm ~= '' then ms = redis.call('HGET', kkey(hk), 's') end
        if redis.call('ZREM', mkey(hg), member(ms, hm)) == 0 then return end
        ready = left_members(hg, hm ~= '', gf)
    end
    if not ready then redis.call('ZREM', ACTIVE, member(gf[1], hg)) end
end

local function deactivate(hk)
    unready(hk)
    redis.call('SREM', KEYSET, hk)
end

-- Wake up to n blocked pops (one mark each): n calls may be runnable. The
-- list keeps at most NOTIFY_BOUND marks; wait.lua empties it when nothing
-- is runnable, so stale marks cost a waiter at most one extra round trip.
local function notify(n)
    if n > __NOTIFY_BOUND__ then n = __NOTIFY_BOUND__ end
    if n < 1 then return end
    local marks = {}
    for i = 1, n do marks[i] = '1' end
    if redis.call('LPUSH', WAKE, unpack(marks)) > __NOTIFY_BOUND__ then
        redis.call('LTRIM', WAKE, 0, __NOTIFY_BOUND__ - 1)
    end
end

-- A lease is about to end at `deadline`: if no lease ends sooner, blocked
-- pops (which sleep at most until the earliest deadline) must look again.
local function notify_deadline(deadline)
    local first = redis.call('ZRANGE', LEASES, 0, 0, 'WITHSCORES')
    if #first == 0 or tonumber(deadline) < tonumber(first[2]) then notify(1) end
end

-- Per-key controls (ranch-core README, "Per-key controls"; the reference is
-- ranch_core/backends/controls.py and parking.py, which this mirrors
-- expression for expression so both compute the same doubles). A key's
-- fields in its state hash: cl (own concurrency limit), rr rb rt (own rate:
-- calls a second, burst, text), ps ('1': paused), mb (max backlog), r
-- (calls leased now), ta (the bucket's theoretical arrival time) and br bb
-- bt (the rate the bucket is kept under), pk (why the key is parked out of
-- ACTIVE: 'p' paused, 'c' at its cap, 'r' its bucket empty, with ea the
-- time it refills; such a key is in PARKED), ct (its calls counted
-- runnable; absent: all of them, the key is plain). Two levels: a string
-- key's fields are its group's (the group is held out of ACTIVE, its
-- members stay in mkey; PARKED holds it under its hex group), a pair's its
-- own (out of its group's mkey; PARKED under its hex key); see settle.
-- A key with none of these fields and a namespace without defaults is
-- plain: no step checks it (the fast path of every script).
-- The controls' functions are built on first use (controls()): a script
-- that meets no control creates none of their closures.
local function build_controls()
    -- A rate limit from its stored fields (calls a second, burst, text), or nil.
    local function rate_of_fields(ps, burst, text)
        local r, b = num(ps), whole(burst)
        if r == nil or r <= 0 or b == nil or b < 1 then return nil end
        return {ps = r, burst = b, text = text or ''}
    end

    -- The enqueued_at of a body (the time a push settles its key at).
    local function enqueued_at(body)
        return num(string.sub(body, 1, (string.find(body, ',', 1, true) or 1) - 1)) or load().ck
    end

    local CF = {'w', 'n', 's', 'r', 'cl', 'rr', 'rb', 'rt', 'ps', 'ta', 'br', 'bb', 'bt', 'pk', 'ea', 'ct', 'mb', 'hs', 'ms', 'mp', 'gr', 'gv',
                'p', 'gq', 'gx', 'gd'}
    local PARK_REASONS = {p = true, c = true, r = true}

    -- A key's controls from the fields CF (as HMGET returned them).
    local function controls_of(f)
        local limit, mb = whole(f[5]), whole(f[17])
        if limit and limit < 1 then limit = nil end
        local c = {
            w = f[1], n = f[2], s = f[3], running = whole(f[4]) or 0,
            limit = limit, rate = rate_of_fields(f[6], f[7], f[8]), paused = f[9] == '1',
            tat = num(f[10]), bucket = rate_of_fields(f[11], f[12], f[13]),
            parked = PARK_REASONS[f[14] or ''] and f[14] or nil, eligible = num(f[15]),
            counted = whole(f[16]), max_backlog = mb, hs = f[18], ms = f[19], mp = f[20], gr = f[21], gv = f[22],
            p = f[23], gq = whole(f[24]) or 0, gx = whole(f[25]) or 0, gd = whole(f[26]) or 0,
        }
        if c.bucket == nil then c.tat = nil end
        return c
    end

    -- A key's controls: for a string key its group's (its hash is the
    -- group's: the own member has no controls of its own); for a pair its
    -- own, with its group's as c.g (`g`: the group's, already read).
    local function key_controls(hk, g)
        local c = controls_of(redis.call('HMGET', kkey(hk), unpack(CF)))
        local hg, hm = split(hk)
        if hm ~= '' then c.g = g or controls_of(redis.call('HMGET', kkey(hg), unpack(CF))) end
        return c
    end

    -- No control of its own and no bucket (memory's KeyControls.plain).
    local function own_plain(c)
        return not c.paused and c.limit == nil and c.rate == nil and c.bucket == nil
    end

    -- Nothing to check or recount: plain, not parked, counted in full, in a
    -- namespace without defaults.
    local function unmarked(c)
        return own_plain(c) and c.parked == nil and c.counted == nil and load().plain
    end

    -- Whether a step must settle the key: its member or its group is not
    -- unmarked.
    local function controlled(c)
        if c.g then return not (unmarked(c) and unmarked(c.g)) end
        return not unmarked(c)
    end

    local function same_rate(a, b)
        if a == nil or b == nil then return a == b end
        return a.ps == b.ps and a.burst == b.burst and a.text == b.text
    end

    -- Keep the bucket under `rate`: a changed rate keeps the calls already
    -- charged (at most the new burst), a removed one resets it (full).
    local function keep_bucket(c, rate, now)
        if same_rate(c.bucket, rate) then return end
        local old = c.bucket
        c.bucket = rate
        if rate == nil or old == nil or c.tat == nil then
            c.tat = nil
        else
            local used = math.min(math.max(0.0, c.tat - now) / (1.0 / old.ps), rate.burst)
            if used > 0 then c.tat = now + used * (1.0 / rate.ps) else c.tat = nil end
        end
    end

    -- Why the key may not start a call at `now` ('p', 'c', 'r'; nil: it may), and
    -- for 'r' the time its bucket lets the next call start.
    local function blocked(c, now)
        local s = load()
        local rate = c.rate or s.dr
        -- First: a rate changed or removed while the key is paused or capped
        -- applies now (a removed rate resets the bucket), not when it resumes.
        keep_bucket(c, rate, now)
        if c.paused then return 'p' end
        local limit = c.limit or s.dl
        if limit and c.running >= limit then return 'c' end
        if rate and c.tat then
            local opens = c.tat - (rate.burst - 1) * (1.0 / rate.ps)
            if now < opens then return 'r', opens end
        end
        return nil
    end

    -- A call of the key starts at `now`: one more running, one less in the bucket.
    local function start(c, now)
        c.running = c.running + 1
        if own_plain(c) and load().plain then return end
        local rate = c.rate or load().dr
        keep_bucket(c, rate, now)
        if rate then
            local tat = now
            if c.tat ~= nil and c.tat > now then tat = c.tat end
            c.tat = tat + 1.0 / rate.ps
        end
    end

    -- How many of `n` waiting calls of an eligible key could start at `now` (at
    -- least 1): bounded by the room under its cap and in its bucket.
    local function room(c, n, now)
        local s = load()
        if own_plain(c) and s.plain then return math.max(n, 1) end
        local count = n
        local limit = c.limit or s.dl
        if limit then count = math.min(count, limit - c.running) end
        local rate = c.rate or s.dr
        if rate then
            -- a bucket never charged (tat nil) is full: it still holds only `burst` calls
            local tokens = rate.burst
            if c.tat then tokens = tokens - math.max(0.0, c.tat - now) / (1.0 / rate.ps) end
            count = math.min(count, math.floor(tokens + 1e-9))
        end
        return math.max(count, 1)
    end

    -- The control fields of a member or group `c` (its running count, its
    -- bucket, why it is parked and when it refills, its runnable count: ct,
    -- absent while it is plain and counted in full), added to `set`/`del`.
    local function control_fields(c, set, del)
        local function put(field, value)
            if value == nil then
                del[#del + 1] = field
            else
                set[#set + 1] = field
                set[#set + 1] = value
            end
        end
        put('r', c.running)
        local b = c.bucket
        put('ta', c.tat and fmt(c.tat))
        put('br', b and fmt(b.ps))
        put('bb', b and b.burst)
        put('bt', b and b.text)
        put('pk', c.parked)
        put('ea', c.eligible and fmt(c.eligible))
        if own_plain(c) and load().plain and c.parked == nil then
            c.counted = nil  -- plain again: counted in full, no field
            put('ct', nil)
        else
            put('ct', c.counted)
        end
    end

    local function write(hash, set, del)
        if #set > 0 then redis.call('HSET', hash, unpack(set)) end
        if #del > 0 then redis.call('HDEL', hash, unpack(del)) end
    end

    -- Park `name` (a pair's hex key, or a group's hex) in PARKED until `at`.
    local function park(name, c, at)
        if c.parked ~= 'r' or c.eligible ~= at then
            local first = redis.call('ZRANGE', PARKED, 0, 0, 'WITHSCORES')
            redis.call('ZADD', PARKED, fmt(at), name)
            -- Blocked pops sleep at most until the earliest refill: look again.
            if #first == 0 or at < tonumber(first[2]) then notify(1) end
        end
    end

    -- Put the key where its controls and its group's say at `now` and recount
    -- the runnable calls (the one place that decides: memory's
    -- KeyControlSteps._settle). `c`: key_controls(hk); `n`: the key's
    -- waiting calls now; `ready`: a pair is in its group's members now (a
    -- string key, the own member, is ready while it has calls: n - dn > 0);
    -- `dn`: how many calls this step added to (or took from, < 0) its list.
    -- Two levels (ranch-core README, "Two-level keys"): a pair's own controls
    -- place it among its group's members (mkey, or PARKED under its hex
    -- key); the group's controls (the string key's fields) place the group:
    -- in ACTIVE while it has a ready member and may start a call, parked by
    -- its rate in PARKED under the group's hex (its members stay in mkey),
    -- else out of both. The group counts min(its room, the runnable calls of
    -- its ready members): the own member's list, plus its pairs' waiting
    -- calls (gq) less those not counted runnable (gx). Writes the control
    -- fields, the stats nr and np; wakes blocked pops for the calls gained.
    -- Returns the runnable calls the key's group gained.
    local function settle(hk, c, n, ready, dn, now)
        local s = load()
        local hg, hm = split(hk)
        local g = c.g or c
        local gplain = own_plain(g) and s.plain
        local reason, at = nil, nil
        if not gplain then reason, at = blocked(g, now) end
        local gm, own_n, np = dn, n, s.np
        if hm == '' then
            local was = n - dn > 0
            if n > 0 and not was then
                activate(hk, s.vt, reason ~= nil)
            elseif n == 0 and was then
                unready(hk)
                redis.call('SREM', KEYSET, hk)
            end
        else
            local plain = own_plain(c) and s.plain
            local mreason, mat = nil, nil
            if not plain then mreason, mat = blocked(c, now) end
            local was_parked = c.parked
            if n > 0 and mreason == nil then
                if not ready then activate(hk, s.vt, reason ~= nil) end
                if was_parked == 'r' then redis.call('ZREM', PARKED, hk) end
            elseif n > 0 and mreason == 'r' then
                if ready then unready(hk) end
                park(hk, c, mat)
            else
                if ready then unready(hk) end
                if was_parked == 'r' then redis.call('ZREM', PARKED, hk) end
                if n == 0 and n - dn > 0 then redis.call('SREM', KEYSET, hk) end
            end
            local parked = nil
            if n > 0 then parked = mreason end
            local counted = 0
            if parked == nil and n > 0 then
                if plain then counted = n else counted = room(c, n, now) end
            end
            gm = counted - (c.counted or (n - dn))
            c.parked, c.counted = parked, counted
            c.eligible = nil
            if parked == 'r' then c.eligible = mat end
            if parked and not was_parked then np = np + 1 elseif was_parked and not parked then np = math.max(np - 1, 0) end
            local set, del = {}, {}
            control_fields(c, set, del)
            write(kkey(hk), set, del)
            -- Its calls not counted runnable, in its group's sum.
            g.gx = math.max(g.gx + dn - gm, 0)
            own_n = redis.call('LLEN', qkey(hg))
        end
        -- The group: its ready members' runnable calls.
        local gs = math.max(own_n + g.gq - g.gx, 0)
        local was = g.parked
        local gmem = member(g.s, hg)
        local gset, gdel = {}, {}
        if gs > 0 and reason == nil then
            if was == 'r' then redis.call('ZREM', PARKED, hg) end
            -- It joins ACTIVE unless it is there: at max(own pass, virtual time).
            local gp = stored_pass(g.p, s.vt)
            if s.vt > gp then gp = s.vt end
            if redis.call('ZADD', ACTIVE, 'NX', fmt(gp), gmem) == 1 then
                extend(gset, {'p', fmt(gp)})
                if g.s and not whole(g.s) then extend(gset, {'s', 0}) end
            end
        else
            redis.call('ZREM', ACTIVE, gmem)
            if gs > 0 and reason == 'r' then
                park(hg, g, at)
            elseif was == 'r' then
                redis.call('ZREM', PARKED, hg)
            end
        end
        local parked = nil
        if gs > 0 then parked = reason end
        local counted = 0
        if parked == nil and gs > 0 then
            if gplain then counted = gs else counted = room(g, gs, now) end
        end
        local gained = counted - (g.counted or (gs - gm))
        g.parked, g.counted = parked, counted
        g.eligible = nil
        if parked == 'r' then g.eligible = at end
        if parked and not was then np = np + 1 elseif was and not parked then np = math.max(np - 1, 0) end
        control_fields(g, gset, gdel)
        if hm ~= '' then extend(gset, {'gx', g.gx}) end
        write(kkey(hg), gset, gdel)
        local nr = s.nr + dn - gained
        if nr < 0 then nr = 0 end
        if nr ~= s.nr or np ~= s.np then
            s.nr, s.np = nr, np
            redis.call('HSET', STATS, 'nr', nr, 'np', np)
        end
        if gained > 0 then notify(gained) end
        return math.max(gained, 0)
    end

    -- A group on top of ACTIVE that may not start a call now (a default
    -- changed since it was placed): parked, its members stay.
    local function settle_group(hg, g, now)
        return settle(hg, g, redis.call('LLEN', qkey(hg)), true, 0, now)
    end

    -- Move up to `limit` keys whose bucket refilled by `now` back (those due
    -- first); the runnable calls gained.
    local function unpark_due(now, limit)
        local due = redis.call('ZRANGEBYSCORE', PARKED, '-inf', fmt(now), 'LIMIT', 0, limit)
        local gained = 0
        for i = 1, #due do
            local hk = due[i]
            local c = key_controls(hk)
            local n = redis.call('LLEN', qkey(hk))
            gained = gained + settle(hk, c, n, n > 0 and not c.parked, 0, now)
            -- An entry whose key says it is not parked by its rate (damage) goes.
            if c.parked ~= 'r' then redis.call('ZREM', PARKED, hk) end
        end
        return gained
    end
    return {
        PARK_REASONS = PARK_REASONS, rate_of_fields = rate_of_fields, enqueued_at = enqueued_at,
        key_controls = key_controls, controlled = controlled, own_plain = own_plain,
        blocked = blocked, start = start, settle = settle, settle_group = settle_group, unpark_due = unpark_due,
    }
end

local K
controls = function()
    if not K then K = build_controls() end
    return K
end

-- Settle a key whose list changed by `dn` calls (taken out: dn < 0) in a
-- step that names it (expire, remove, purge, revoke); a plain key that
-- emptied only leaves ACTIVE. Returns the runnable calls gained.
local function settle_after(hk, dn, now)
    local n = redis.call('LLEN', qkey(hk))
    counted(hk, n)
    moved(hk, dn)
    if ctl_on() then
        local k = controls()
        local c = k.key_controls(hk)
        if k.controlled(c) then return k.settle(hk, c, n, n - dn > 0 and not c.parked, dn, now or load().ck) end
    end
    if n == 0 then deactivate(hk) end
    return 0
end

-- Whether a push of `k` calls to key hk (controls c: key_controls) would
-- exceed a max_backlog: a pair's own (its waiting and delayed calls), or its
-- group's (the string key's: every member's, from the group's sums).
-- Returns the calls stored, the limit and '1' if it is the group's (else
-- ''), or nil.
local function backlog_full(hk, c, k)
    if c.g and c.max_backlog then
        local len = redis.call('LLEN', qkey(hk)) + redis.call('ZCARD', dkey(hk))
        if len + k > c.max_backlog then return len, c.max_backlog, '' end
    end
    local g = c.g or c
    if g.max_backlog then
        local hg = split(hk)
        local len = redis.call('LLEN', qkey(hg)) + redis.call('ZCARD', dkey(hg)) + g.gq + g.gd
        if len + k > g.max_backlog then return len, g.max_backlog, '1' end
    end
    return nil
end

-- The earliest time a key parked by its rate becomes eligible or a delayed
-- call is due, or nil.
local function retry_at()
    local first = redis.call('ZRANGE', PARKED, 0, 0, 'WITHSCORES')
    local due = redis.call('ZRANGE', DELAYED, 0, 0, 'WITHSCORES')
    local t = nil
    if #first > 0 then t = tonumber(first[2]) end
    if #due > 0 and (t == nil or tonumber(due[2]) < t) then t = tonumber(due[2]) end
    return t
end

-- Delayed calls (ranch-core README, "Delayed calls"; the reference is
-- ranch_core/backends/delayed.py): stored in TASKS, out of their key's list,
-- in DELAYED and the key's dkey zset until due. push_delayed.lua stores them
-- and marks the namespace (stats field ctl), so every step that counts or
-- moves them runs only where they may exist. Move up to `limit` calls due
-- at `now` (by score, then task id) to the tail of their keys, as a push at
-- `now` would, each body's enqueued_at rewritten to its due time (its wait
-- starts there); returns the runnable calls gained.
local function promote_due(now, limit)
    local due = redis.call('ZRANGEBYSCORE', DELAYED, '-inf', fmt(now), 'WITHSCORES', 'LIMIT', 0, limit)
    if #due == 0 then return 0 end
    local ids = {}
    for i = 1, #due, 2 do ids[#ids + 1] = due[i] end
    redis.call('ZREM', DELAYED, unpack(ids))
    local k = controls()
    local gained = 0
    for i = 1, #due, 2 do
        local tid = due[i]
        local body = redis.call('HGET', TASKS, tid)
        local hk, exp = parse(body)
        if hk then
            local comma = string.find(body, ',', 1, true)
            redis.call('HSET', TASKS, tid, fmt(tonumber(due[i + 1])) .. string.sub(body, comma))
            redis.call('ZREM', dkey(hk), tid)
            index_expiry(tid, hk, exp)
            local n = redis.call('RPUSH', qkey(hk), tid)
            counted(hk, n)
            moved(hk, 1)
            add_sum(hk, 'gd', -1)
            local c = k.key_controls(hk)
            if k.controlled(c) then
                gained = gained + k.settle(hk, c, n, n > 1 and not c.parked, 1, now)
            else
                if n == 1 then activate(hk, load().vt) end
                notify(1)
                gained = gained + 1
            end
        else
            -- An unreadable record cannot join a key (nor be run): it goes.
            redis.call('HDEL', TASKS, tid)
        end
    end
    return gained
end

-- A lease of the key ended (ack, finish, retry, release, lease put back):
-- one call less running; `dn` calls were added to its list, `n` is its
-- length now (nil: read it). Returns the runnable calls the key gained
-- (-1 for a plain key: the caller activates and notifies as before).
-- A pair's lease ends in its group's running count too.
local function lease_ended(hk, dn, n, now)
    local hg, hm = split(hk)
    if not ctl_on() then
        -- pcall: a corrupt count (not an integer) must not fail the step halfway.
        local r = redis.pcall('HINCRBY', kkey(hk), 'r', -1)
        if type(r) ~= 'number' or r < 0 then redis.call('HSET', kkey(hk), 'r', 0) end
        if hm ~= '' then
            r = redis.pcall('HINCRBY', kkey(hg), 'r', -1)
            if type(r) ~= 'number' or r < 0 then redis.call('HSET', kkey(hg), 'r', 0) end
        end
        return -1
    end
    local k = controls()
    local c = k.key_controls(hk)
    now = now or load().ck
    c.running = math.max(c.running - 1, 0)
    if c.g then c.g.running = math.max(c.g.running - 1, 0) end
    if not k.controlled(c) then
        redis.call('HSET', kkey(hk), 'r', c.running)
        if c.g then redis.call('HSET', kkey(hg), 'r', c.g.running) end
        return -1
    end
    if n == nil then n = redis.call('LLEN', qkey(hk)) end
    return k.settle(hk, c, n, n - dn > 0 and not c.parked, dn, now)
end

-- cost="runtime" (ranch-core README, "Fair by time"; the reference is
-- InMemoryStorage._settle_charge, mirrored expression for expression): the
-- lease of task tid (key hk), charged its estimate at the pop, ends at
-- `now`. The key's pass moves from the estimate to the run time (`cost`,
-- else now - started; at least MIN_RUNTIME) and, with `learn`, the run time
-- feeds the key's moving average (field re) and the namespace's (stats
-- field ra). `now` nil: no time given, the estimate stands. A namespace in
-- which no pop charged by run time (stats field rn) reads nothing more.
local function settle_charge(tid, hk, now, cost, learn)
    if not rt_on() then return end
    local raw = redis.call('HGET', RC, tid)
    if not raw then return end
    redis.call('HDEL', RC, tid)
    if now == nil or not hk then return end
    -- 'started estimate group-weight member-weight' (a charge written before
    -- two-level keys has no member weight: its key was a string key, 1).
    local started, estimate, gw, w = string.match(raw, '^(%S+) (%S+) (%S+) (%S+)$')
    if not started then
        started, estimate, gw = string.match(raw, '^(%S+) (%S+) (%S+)$')
        w = '1'
    end
    started, estimate, gw, w = num(started), num(estimate), num(gw), num(w)
    if not (started and estimate and gw and w) then return end
    local c = cost
    if c == nil then c = now - started end
    if c < __MIN_RUNTIME__ then c = __MIN_RUNTIME__ end
    local hg, hm = split(hk)
    local g = kkey(hg)
    local k = kkey(hk)
    local vt = load().vt
    local gf = redis.call('HMGET', g, 'p', 's', 'gv', 'mp', 'ms', 're', 'gr')
    local mp, ms, re = gf[4], gf[5], gf[6]
    if hm ~= '' then
        local f = redis.call('HMGET', k, 'p', 's', 're')
        mp, ms, re = f[1], f[2], f[3]
    end
    local gp = fmt(stored_pass(gf[1], vt) + (c - estimate) * gw)
    local p = fmt(stored_pass(mp, num(gf[3]) or 0) + (c - estimate) * w)
    if hm == '' then
        redis.call('HSET', g, 'p', gp, 'mp', p)
    else
        redis.call('HSET', g, 'p', gp)
        redis.call('HSET', k, 'p', p)
    end
    redis.call('ZADD', ACTIVE, 'XX', gp, member(gf[2], hg))
    if hm ~= '' or ready_pairs(hg, gf[7], gf[5]) > 0 then redis.call('ZADD', mkey(hg), 'XX', p, member(ms, hm)) end
    if learn then
        local e = num(re)
        if e == nil then e = c else e = e + __RUNTIME_SMOOTHING__ * (c - e) end
        local a = num(redis.call('HGET', STATS, 'ra'))
        if a == nil then a = c else a = a + __RUNTIME_SMOOTHING__ * (c - a) end
        redis.call('HSET', k, 're', fmt(e))
        redis.call('HSET', STATS, 'ra', fmt(a))
    end
end

-- Put a leased task back at the head of its key (its lease ended).
local function put_back(tid, hk, exp, now)
    redis.call('HDEL', STARTED, tid)
    index_expiry(tid, hk, exp)
    local n = redis.call('LPUSH', qkey(hk), tid)
    counted(hk, n)
    moved(hk, 1)
    if lease_ended(hk, 1, n, now) < 0 then
        if n == 1 then activate(hk, load().vt) end
        notify(1)
    end
end


-- Put back the leases whose deadline is <= now, ordered by (deadline, task
-- id); at most `limit` of them (nil: all). Re-inserted latest first so the
-- earliest ends at the head of its key. Returns {tid, body, ...} earliest
-- first, and {tid, body, ...} of corrupt leases (dropped).
local function reclaim(now, limit)
    local due
    if limit then
        due = redis.call('ZRANGEBYSCORE', LEASES, '-inf', now, 'LIMIT', 0, limit)
        if #due == 0 then return due, {} end
    else
        due = redis.call('ZRANGEBYSCORE', LEASES, '-inf', now)
    end
    if rt_on() then
        -- Killed calls are charged their lease time, earliest lease first,
        -- before any goes back (as the reference does).
        for i = 1, #due do
            local hk = parse(redis.call('HGET', TASKS, due[i]))
            settle_charge(due[i], hk, tonumber(redis.call('ZSCORE', LEASES, due[i])), nil, false)
        end
    end
    local bodies = {}
    local corrupt = {}
    for i = #due, 1, -1 do
        local tid = due[i]
        redis.call('ZREM', LEASES, tid)
        local body = redis.call('HGET', TASKS, tid)
        local hk, exp = parse(body)
        if hk then
            put_back(tid, hk, exp, tonumber(now))
            bodies[i] = body
        else
            redis.call('HDEL', TASKS, tid)
            redis.call('HDEL', STARTED, tid)
            bodies[i] = false
            table.insert(corrupt, tid)
            table.insert(corrupt, body or '')
        end
    end
    local out = {}
    for i = 1, #due do
        if bodies[i] then
            table.insert(out, due[i])
            table.insert(out, bodies[i])
        end
    end
    return out, corrupt
end

-- Finish a lease and append the task, with a new body, to the tail of its
-- key (a retry) at `now`; see requeue.lua for the replies and the retry
-- flag. Returns the reply and the runnable calls gained (-1: a plain key).
local function requeue_task(tid, hk, body, retry, exp, now, cost)
    if redis.call('ZSCORE', LEASES, tid) then
        redis.call('ZREM', LEASES, tid)
        ran(hk, tid, now, false)
        local leased = parse(redis.call('HGET', TASKS, tid)) or hk
        settle_charge(tid, leased, now, cost, true)
        redis.call('HSET', TASKS, tid, body)
        index_expiry(tid, hk, exp)
        joined(hk, 1)
        local n = redis.call('RPUSH', qkey(hk), tid)
        counted(hk, n)
        count_metric(kkey(leased), 'mt')
        local gained
        if leased == hk then
            gained = lease_ended(hk, 1, n, now)
        else
            -- A retry under another key: the lease ends in its own key.
            gained = math.max(lease_ended(leased, 0, nil, now), 0)
            local c = ctl_on() and controls().key_controls(hk)
            if c and controls().controlled(c) then
                gained = gained + controls().settle(hk, c, n, n > 1 and not c.parked, 1, now or load().ck)
            else
                gained = -1
            end
        end
        if gained < 0 then
            if n == 1 then activate(hk, load().vt) end
            notify(1)
        end
        return __REQUEUE_DONE__, gained
    end
    if retry == '1' and redis.call('HEXISTS', TASKS, tid) == 1 then return __REQUEUE_ALREADY__, 0 end
    return __REQUEUE_NOT_LEASED__, 0
end

-- Wake-up tokens (ranch-core's "Wake-ups"). Waiting = tasks stored but not leased.
local function n_waiting()
    local w = redis.call('HLEN', TASKS) - redis.call('ZCARD', LEASES)
    if ctl_on() then w = w - redis.call('ZCARD', DELAYED) end
    return w
end

-- What tokens are minted for: the waiting calls that could start now (calls
-- of parked keys, and beyond a key's cap or bucket, left out).
local function runnable()
    local w = n_waiting()
    if ctl_on() then w = math.max(w - load().nr, 0) end
    return w
end

-- Tokens deferred for a rate-limited call (none before any control was set).
local function n_deferred()
    if ctl_on() then return redis.call('ZCARD', DEFERRED) end
    return 0
end

-- Mint up to `limit` tokens (ids nonce .. i) into FLIGHT with `deadline`,
-- while fewer are in flight than calls are runnable and fewer than m are
-- outstanding (in flight, held, deferred).
-- `floor` (optional) is a number of calls known to be runnable (a push's own): the
-- usual "no" (m outstanding already) then costs one ZCARD, and the runnable
-- count is read only when it could change the answer.
local function mint(nonce, deadline, m, limit, floor)
    local out = {}
    local f = redis.call('ZCARD', FLIGHT)
    if f >= m then return out end
    local h = redis.call('ZCARD', HELD) + n_deferred()
    if f + h >= m then return out end
    local w = floor or 0
    if f + limit > w then w = runnable() end
    while #out < limit and f < w and f + h < m do
        local tok = nonce .. (#out + 1)
        redis.call('ZADD', FLIGHT, deadline, tok)
        f = f + 1
        out[#out + 1] = tok
    end
    return out
end

-- Drop a held token and its binding; false if it was not held.
local function unhold(tok)
    if redis.call('ZREM', HELD, tok) == 0 then return false end
    local task = redis.call('HGET', BOUND, tok)
    redis.call('HDEL', BOUND, tok)
    if task and task ~= '' and redis.call('HGET', HOLDER, task) == tok then redis.call('HDEL', HOLDER, task) end
    return true
end

-- Forget a token wherever it is (in flight, held, deferred).
local function retire(tok)
    redis.call('ZREM', FLIGHT, tok)
    unhold(tok)
    if ctl_on() then redis.call('ZREM', DEFERRED, tok) end
end

-- Keep a token until `due` (its worker publishes it with that delay), unless
-- another token is deferred to `due` or sooner: then it is retired. True if kept.
local function defer(tok, due)
    redis.call('ZREM', FLIGHT, tok)
    unhold(tok)
    local sooner = redis.call('ZRANGEBYSCORE', DEFERRED, '-inf', fmt(due), 'LIMIT', 0, 2)
    for i = 1, #sooner do
        if sooner[i] ~= tok then
            redis.call('ZREM', DEFERRED, tok)
            return false
        end
    end
    redis.call('ZADD', DEFERRED, fmt(due), tok)
    return true
end

-- A token after its call: kept (held, unbound) while calls are runnable if
-- asked; else passed on while more calls are runnable than tokens are in
-- flight; else, with `may_defer` and nothing runnable but a key parked by its
-- rate or a delayed call, deferred to the time its bucket refills or the call
-- is due (second value); else retired.
local function hand_back(tok, deadline, m, keep, may_defer)
    -- Held, or retired meanwhile (its deadline passed) and neither in flight
    -- again nor deferred; kept only while under the bound (a bound that
    -- shrank, sized to the fleet, retires the excess).
    local have = unhold(tok)
        or not (redis.call('ZSCORE', FLIGHT, tok) or (ctl_on() and redis.call('ZSCORE', DEFERRED, tok)))
    have = have and redis.call('ZCARD', FLIGHT) + redis.call('ZCARD', HELD) + n_deferred() < m
    if have and keep and runnable() > 0 then
        redis.call('ZADD', HELD, deadline, tok)
        redis.call('HSET', BOUND, tok, '')
        return __TOKEN_KEPT__
    end
    if have and runnable() > redis.call('ZCARD', FLIGHT) then
        redis.call('ZADD', FLIGHT, deadline, tok)
        return __TOKEN_PASSED__
    end
    if have and may_defer and ctl_on() and runnable() == 0 then
        local later = retry_at()
        if later and defer(tok, later) then return __TOKEN_DEFERRED__, fmt(later) end
    end
    return __TOKEN_RETIRED__
end

-- Metrics (ranch_redis.layout, "Metrics"): bounded summaries kept by the
-- steps that start and end calls, never a per-call log. A key's state hash
-- and the stats hash hold the wait (stored -> started) histogram: h0 ... hN
-- count the waits up to each bound of WAIT_BOUNDS (hN: longer; not
-- cumulative), hs their sum in seconds (written with the fields the pop
-- writes anyway); a key's me counts its expired calls, mt its retries.
-- Served is the key's n. Each pop adds two HINCRBY (its key, the namespace)
-- and records when the run started (STARTED); the step that ends the lease
-- with a time (finish, a retry) counts the run time in u0 ... uN, us (same
-- bounds) and a failed call in mf; every other end of a lease (ack without
-- a time, release, a lease put back) only forgets the start.
local WAIT_BOUNDS = {0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 1800}

-- The field of the bucket of `x` seconds: prefix .. index (the last: longer).
local function bucket(prefix, x)
    for i = 1, #WAIT_BOUNDS do
        if x <= WAIT_BOUNDS[i] then return prefix .. (i - 1) end
    end
    return prefix .. #WAIT_BOUNDS
end

-- Add `x` to a float sum; a corrupt one starts again at `x`.
local function add_seconds(hash, field, x)
    local r = redis.pcall('HINCRBYFLOAT', hash, field, fmt(x))
    if type(r) == 'table' and r.err then redis.call('HSET', hash, field, fmt(x)) end
end

-- Add 1 to a counter; a corrupt one (not an integer) starts again at 1.
count_metric = function(hash, field)
    local r = redis.pcall('HINCRBY', hash, field, 1)
    if type(r) ~= 'number' then redis.call('HSET', hash, field, 1) end
end

-- A call of key hk stored at its body's enqueued_at starts at `now`: one
-- more in the key's and the namespace's histogram. Returns the wait (>= 0).
local function waited(hk, body, now)
    local w = now - (num(string.sub(body, 1, (string.find(body, ',', 1, true) or 1) - 1)) or now)
    if w < 0 then w = 0 end
    local field = bucket('h', w)
    count_metric(kkey(hk), field)
    count_metric(STATS, field)
    return w
end

-- The lease of task tid (key hk) ends at `now` after its run (finish or a
-- retry; `now` nil: no time, the start is only forgotten): its run time goes
-- into the key's and the namespace's run histogram, a failed run into mf.
ran = function(hk, tid, now, failed)
    if now == nil then
        redis.call('HDEL', STARTED, tid)
        return
    end
    local started = num(redis.call('HGET', STARTED, tid))
    redis.call('HDEL', STARTED, tid)
    if failed then
        count_metric(kkey(hk), 'mf')
        count_metric(STATS, 'mf')
    end
    if started == nil then return end
    local r = now - started
    if r < 0 then r = 0 end
    local field = bucket('u', r)
    count_metric(kkey(hk), field)
    count_metric(STATS, field)
    add_seconds(kkey(hk), 'us', r)
    add_seconds(STATS, 'us', r)
end
