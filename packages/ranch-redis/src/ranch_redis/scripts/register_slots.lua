-- register_slots: record that a worker runs `slots` calls at once until
-- `deadline`; forget workers whose registration ran out; sum the live ones.
-- ARGV: worker id, slots, now, deadline (now + ttl).
-- Reply: the live total of slots (an integer).
local worker, slots, now, deadline = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4]
if not slots or slots < 0 then return redis.error_reply('slots must be a number >= 0') end
local dead = redis.call('ZRANGEBYSCORE', WORKERS, '-inf', now)
for i = 1, #dead do
    redis.call('ZREM', WORKERS, dead[i])
    redis.call('HDEL', SLOTS, dead[i])
end
redis.call('ZADD', WORKERS, deadline, worker)
redis.call('HSET', SLOTS, worker, slots)
local total = 0
local counts = redis.call('HVALS', SLOTS)
for i = 1, #counts do total = total + (tonumber(counts[i]) or 0) end
return total
