-- set_control: set a key's own control, or a default, and settle the key.
-- ARGV: hex key ('' = the default for keys without a setting of their
--       own), name, now, m (max_wakeups, '' = no tokens), token nonce,
--       token deadline (now + ttl), then the value (checked by the caller;
--       '' = None): concurrency_limit and max_backlog: the number;
--       paused: '1' or '0'; rate_limit: calls a second, burst, text.
-- Reply: {minted token id...}: up to FANOUT tokens if the change made
-- calls of the key runnable (and m is given).
-- Marks the namespace as using controls (stats field ctl), from then on
-- read by every step. A default is only written: each key follows it at
-- its next step (no walk over the keys).
local hk, name, now_s, m = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local now = tonumber(now_s)
local value = ARGV[7] or ''
local s = load()
s.ctl, s.ck = true, now
redis.call('HSET', STATS, 'ctl', '1', 'ck', now_s)
local function write(hash, fields, values)
    local set, del = {}, {}
    for i, field in ipairs(fields) do
        if values[i] == '' then
            del[#del + 1] = field
        else
            extend(set, {field, values[i]})
        end
    end
    if #set > 0 then redis.call('HSET', hash, unpack(set)) end
    if #del > 0 then redis.call('HDEL', hash, unpack(del)) end
end
local rate_values = {value, ARGV[8] or '', ARGV[9] or ''}
if value == '' then rate_values = {'', '', ''} end
if hk == '' then
    if name == 'concurrency_limit' then
        write(STATS, {'dl'}, {value})
    elseif name == 'rate_limit' then
        write(STATS, {'dr', 'db', 'dt'}, rate_values)
    else
        return redis.error_reply(name .. ' has no default')
    end
    return {}
end
local k = kkey(hk)
if name == 'concurrency_limit' then
    write(k, {'cl'}, {value})
elseif name == 'rate_limit' then
    write(k, {'rr', 'rb', 'rt'}, rate_values)
elseif name == 'paused' then
    if value == '1' then write(k, {'ps'}, {'1'}) else write(k, {'ps'}, {''}) end
elseif name == 'max_backlog' then
    write(k, {'mb'}, {value})
else
    return redis.error_reply('unknown control ' .. name)
end
local c = controls().key_controls(hk)
local n = redis.call('LLEN', qkey(hk))
local gained = controls().settle(hk, c, n, n > 0 and not c.parked, 0, now)
if m == '' or gained == 0 then return {} end
return mint(ARGV[5], ARGV[6], tonumber(m), __FANOUT__)
