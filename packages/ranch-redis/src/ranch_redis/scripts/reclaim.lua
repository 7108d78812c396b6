-- reclaim: put back every lease whose deadline is <= now.
-- ARGV: now. Returns {#reclaimed, reclaimed tid, body, ..., corrupt tid, body, ...}.
local reclaimed, corrupt = reclaim(ARGV[1], nil)
local out = {#reclaimed / 2}
extend(out, reclaimed)
extend(out, corrupt)
return out
