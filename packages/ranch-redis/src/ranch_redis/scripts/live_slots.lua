-- live_slots: the total slots of the workers whose registration runs past
-- `now` (read only).
-- ARGV: now.
-- Reply: the live total of slots (an integer).
local live = redis.call('ZRANGEBYSCORE', WORKERS, '(' .. ARGV[1], '+inf')
local total = 0
if #live > 0 then
    local counts = redis.call('HMGET', SLOTS, unpack(live))
    for i = 1, #counts do total = total + (tonumber(counts[i]) or 0) end
end
return total
