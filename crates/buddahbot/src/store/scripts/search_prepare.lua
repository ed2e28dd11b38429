-- Opens the user's search index (store/search.rs): the current generation, or a new one
-- when there is none (the first search, or the last generation ended), which the caller then
-- fills from every thread. A generation lives a fixed time, so deleted text leaves the index
-- for good when it ends (its keys expire a day after its root).
-- KEYS: 1 root (hash), 2 changed (set)
-- ARGV: 1 now (ms), 2 a generation's lifetime (ms)
-- Returns {generation, end (ms), 1 when it was just started else 0, changed threads waiting}.
local root = redis.call('HMGET', KEYS[1], 'gen', 'expireAt')
if root[1] then
  return {root[1], root[2], 0, redis.call('SCARD', KEYS[2])}
end
local ends = tonumber(ARGV[1]) + tonumber(ARGV[2])
redis.call('HSET', KEYS[1], 'gen', ARGV[1], 'expireAt', ends, 'next', 0)
redis.call('PEXPIREAT', KEYS[1], ends)
return {ARGV[1], tostring(ends), 1, redis.call('SCARD', KEYS[2])}
