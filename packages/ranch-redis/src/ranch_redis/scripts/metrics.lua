-- metrics: the namespace's counters and wait histogram, and the same for its
-- top keys by waiting calls (bounded: the exporter's series), in one step.
-- ARGV: now ('' = count expired calls not yet dropped too), limit (top keys).
-- Reply: {waiting, running, active keys, served, expired, wait sum, h0 ...
--   hN, failed, run sum, u0 ... uN, then per key: hex key, waiting,
--   running, served, expired, retried, wait sum, h0 ... hN, failed, run
--   sum, u0 ... uN, run estimate} ('' for a field never written). Reads only the
--   namespace's stats and the keys it answers: O(limit log K). Delayed
--   calls not yet due are not waiting.
local s = load()
local leased = redis.call('ZCARD', LEASES)
local waiting = n_waiting()
if ARGV[1] ~= '' then waiting = waiting - redis.call('ZCOUNT', EXPIRY, '-inf', ARGV[1]) end
local fields = {'hs'}
for i = 0, #WAIT_BOUNDS do fields[#fields + 1] = 'h' .. i end
extend(fields, {'mf', 'us'})
for i = 0, #WAIT_BOUNDS do fields[#fields + 1] = 'u' .. i end
local out = {waiting, leased, redis.call('ZCARD', ACTIVE) + s.xm + s.np, s.seq, s.expired}
extend(out, redis.call('HMGET', STATS, unpack(fields)))
local limit = tonumber(ARGV[2])
if limit < 1 then return out end
local keyf = {'r', 'n', 'me', 'mt'}
extend(keyf, fields)
keyf[#keyf + 1] = 're'
for _, hk in ipairs(redis.call('ZREVRANGE', KW, 0, limit - 1)) do
    extend(out, {hk, redis.call('LLEN', qkey(hk))})
    extend(out, redis.call('HMGET', kkey(hk), unpack(keyf)))
end
return out
