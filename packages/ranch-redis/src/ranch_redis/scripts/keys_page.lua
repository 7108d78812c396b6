-- keys_page: one page of a namespace's keys, in one of three orders; reads
-- only the keys it answers (O(limit log K)), never the whole keyspace.
-- ARGV: order ('waiting': most waiting calls first, from KW; 'served': most
--       calls served first, from KN; 'wait': the fair order, the key served
--       next first, from ACTIVE), limit, offset.
-- Reply: {keys in that index, active keys (ACTIVE + parked), default
--   concurrency limit ('' = none), default rate text ('' = none), then per
--   key: hex key, waiting (its list's length), running, served, weight,
--   last served, paused ('1'/''), own concurrency limit, own rate text,
--   parked reason ('p', 'c', 'r' or ''), eligible at, max backlog, place in
--   the fair order (0 = next; '' = not in ACTIVE)} ('' for a field not set).
local order, limit, offset = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3] or '0')
local s = load()
local index, page
if order == 'wait' then
    index = ACTIVE
    page = redis.call('ZRANGE', ACTIVE, offset, offset + limit - 1)
    for i = 1, #page do page[i] = string.sub(page[i], 17) end
else
    if order == 'served' then index = KN else index = KW end
    page = redis.call('ZREVRANGE', index, offset, offset + limit - 1)
end
local out = {redis.call('ZCARD', index), redis.call('ZCARD', ACTIVE) + s.xm + s.np, s.dl or '', s.dr and s.dr.text or ''}
for i = 1, #page do
    local hk = page[i]
    local f = redis.call('HMGET', kkey(hk), 'r', 'n', 'w', 'l', 'ps', 'cl', 'rt', 'pk', 'ea', 'mb', 's')
    local place = ''
    if order == 'wait' then
        place = offset + i - 1
    elseif f[8] == false then
        local hg, hm = split(hk)
        local gs = f[11]
        if hm ~= '' then gs = redis.call('HGET', kkey(hg), 's') end
        place = redis.call('ZRANK', ACTIVE, member(gs, hg)) or ''
    end
    extend(out, {hk, redis.call('LLEN', qkey(hk)), f[1] or '', f[2] or '', f[3] or '', f[4] or '',
                 f[5] or '', f[6] or '', f[7] or '', f[8] or '', f[9] or '', f[10] or '', place})
end
return out
