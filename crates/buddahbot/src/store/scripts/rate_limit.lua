-- Counts one request against the caller's limits (library: limits.lua). One round trip.
-- KEYS: the limits' key (when any limit applies), then the day's token counter
-- ARGV: 1 now (ms), 2.. as limits.lua reads them
return rate_limit(1, 2, tonumber(ARGV[1]))
