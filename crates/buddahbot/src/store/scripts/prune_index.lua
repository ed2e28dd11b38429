-- Drops ids from a listing (the index, or one of its filters' sets) whose thread meta has
-- expired, and from the index's other listings it may be in. Checked here, not by the caller,
-- so a thread re-created in between is left alone.
-- KEYS: 1 index, 2.. meta key of each candidate
-- ARGV: 1.. the candidate ids, in the same order as KEYS[2..]
local removed = 0
for i = 1, #ARGV do
  if redis.call('EXISTS', KEYS[i + 1]) == 0 then
    removed = removed + redis.call('ZREM', KEYS[1], ARGV[i])
    -- The listings it may still be in (its meta, which named them, is gone).
    local index = string.match(KEYS[1], '^(.-}:threads)') or KEYS[1]
    redis.call('ZREM', index, ARGV[i])
    redis.call('ZREM', index .. ':archived', ARGV[i])
    redis.call('ZREM', index .. ':pinned', ARGV[i])
  end
end
return removed
