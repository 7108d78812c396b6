-- finish: acknowledge a lease (or requeue the task: a retry) and decide
-- the fate of the wake-up token the caller holds, in one step.
-- ARGV: task id, mode ('ack' or 'requeue'), token ('' = none), m
--       (max_wakeups, '' = no tokens), token deadline (now + ttl), keep
--       ('1' = keep the token held while tasks wait), token nonce; for
--       'requeue' then: hex key, body, retry ('1' = a retry), expires_at.
-- Reply: {done (1/0), fate, minted token id...}; fate: __TOKEN_PASSED__
-- (publish the token again), __TOKEN_KEPT__, __TOKEN_RETIRED__, or
-- __TOKEN_NONE__ (no token given). A requeue without a token mints at
-- most one token.
local tid, mode, tok, m, deadline = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local done = 0
if mode == 'requeue' then
    if requeue_task(tid, ARGV[8], ARGV[9], ARGV[10], ARGV[11] or '') ~= __REQUEUE_NOT_LEASED__ then done = 1 end
elseif redis.call('ZREM', LEASES, tid) == 1 then
    redis.call('HDEL', TASKS, tid)
    done = 1
end
if m == '' then return {done, __TOKEN_NONE__} end
if tok == '' then
    local out = {done, __TOKEN_NONE__}
    if mode == 'requeue' and done == 1 then extend(out, mint(ARGV[7], deadline, tonumber(m), 1)) end
    return out
end
return {done, hand_back(tok, deadline, tonumber(m), ARGV[6] == '1')}
