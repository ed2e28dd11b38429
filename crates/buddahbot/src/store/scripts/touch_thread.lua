-- Writes to an existing thread: renames it and/or appends messages, bumps updatedAt, and
-- restarts the TTL of all three keys. Nothing is created when the thread does not exist,
-- so a write can never resurrect a deleted or expired thread as a half-empty husk.
-- KEYS: 1 meta, 2 messages, 3 index
-- ARGV: 1 thread id, 2 now (ms), 3 ttl (ms), 4 new title or '', 5 model or '',
--       6.. message JSON to append, oldest first
-- Returns the meta hash as a flat array, or nil when the thread does not exist.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return nil
end
local appended = #ARGV - 5
if appended > 0 then
  redis.call('RPUSH', KEYS[2], unpack(ARGV, 6))
  redis.call('HINCRBY', KEYS[1], 'messageCount', appended)
end
if ARGV[4] ~= '' then
  redis.call('HSET', KEYS[1], 'title', ARGV[4])
  -- Named by the user: no model-written title replaces it.
  redis.call('HDEL', KEYS[1], 'titleAuto')
end
if ARGV[5] ~= '' then
  redis.call('HSET', KEYS[1], 'model', ARGV[5])
end
redis.call('HSET', KEYS[1], 'updatedAt', ARGV[2])
reindex(KEYS[3], ARGV[1], ARGV[2], KEYS[1], ARGV[3])
for i = 1, 3 do
  redis.call('PEXPIRE', KEYS[i], ARGV[3])
end
return redis.call('HGETALL', KEYS[1])
