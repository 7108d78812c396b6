-- finish: acknowledge a lease (or requeue the task: a retry) and decide
-- the fate of the wake-up token the caller holds, in one step.
-- ARGV: task id, mode ('ack' or 'requeue'), now, token ('' = none), m
--       (max_wakeups, '' = no tokens), token deadline (now + ttl), keep
--       (first character '1': keep the token held while calls are runnable;
--       second '1': it may be deferred, see hand_back; third '1': the call
--       failed, for the metrics), token nonce;
--       for 'requeue' then: hex key, body, retry ('1' = a retry), expires_at
--       ('' each for 'ack'); then the run time the caller measured (cost,
--       seconds; absent or '': now minus the start), for a call charged by
--       run time (common.lua, settle_charge).
-- Reply: {done (1/0), fate, minted token id...}; fate: __TOKEN_PASSED__
-- (publish the token again), __TOKEN_KEPT__, __TOKEN_RETIRED__,
-- __TOKEN_DEFERRED__ (then the time it is due instead of token ids), or
-- __TOKEN_NONE__ (no token given). Without a token, a requeue, or a finish
-- whose end let its key run again (its cap freed), mints at most one token.
local tid, mode, now_s, tok, m, deadline = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local now = tonumber(now_s)
local cost = num(ARGV[13] or '')
rt_on()  -- reads the stats fields ctl and rn in one command
if ctl_on() and load().ck ~= now then
    load().ck = now
    redis.call('HSET', STATS, 'ck', now_s)
end
local done, gained = 0, 0
if mode == 'requeue' then
    local state
    state, gained = requeue_task(tid, ARGV[9], ARGV[10], ARGV[11], ARGV[12] or '', now, cost)
    if state ~= __REQUEUE_NOT_LEASED__ then done = 1 end
elseif redis.call('ZREM', LEASES, tid) == 1 then
    local hk = parse(redis.call('HGET', TASKS, tid))
    redis.call('HDEL', TASKS, tid)
    settle_charge(tid, hk, now, cost, true)
    if hk then
        gained = lease_ended(hk, 0, nil, now)
        ran(hk, tid, now, string.sub(ARGV[7], 3, 3) == '1')
    else
        redis.call('HDEL', STARTED, tid)
    end
    done = 1
end
if m == '' then return {done, __TOKEN_NONE__} end
if tok == '' then
    local out = {done, __TOKEN_NONE__}
    if (mode == 'requeue' and done == 1) or gained > 0 then extend(out, mint(ARGV[8], deadline, tonumber(m), 1)) end
    return out
end
return {done, hand_back(tok, deadline, tonumber(m), string.sub(ARGV[7], 1, 1) == '1', string.sub(ARGV[7], 2, 2) == '1')}
