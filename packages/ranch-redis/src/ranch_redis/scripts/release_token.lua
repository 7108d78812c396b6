-- release_token: hand back a held token: passed on while tasks wait, else retired.
-- ARGV: token, token deadline (now + ttl), m (max_wakeups).
-- Reply: __TOKEN_PASSED__ (publish it) or __TOKEN_RETIRED__.
return hand_back(ARGV[1], ARGV[2], tonumber(ARGV[3]), false)
