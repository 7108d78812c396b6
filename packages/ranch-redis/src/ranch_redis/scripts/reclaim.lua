-- reclaim: put back every lease whose deadline is <= now.
-- ARGV: base, now. Returns {reclaimed {tid, body, ...}, corrupt {tid, body, ...}}.
local reclaimed, corrupt = reclaim(ARGV[2], nil)
return {reclaimed, corrupt}
