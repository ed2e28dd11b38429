-- Drops ids from the index whose thread meta has expired. Checked here, not by the caller,
-- so a thread re-created in between is left alone.
-- KEYS: 1 index, 2.. meta key of each candidate
-- ARGV: 1.. the candidate ids, in the same order as KEYS[2..]
local removed = 0
for i = 1, #ARGV do
  if redis.call('EXISTS', KEYS[i + 1]) == 0 then
    removed = removed + redis.call('ZREM', KEYS[1], ARGV[i])
  end
end
return removed
