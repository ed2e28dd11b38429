-- Creates a thread unless its id is taken, named for search to read (library: index.lua).
-- One round trip, atomic.
-- KEYS: 1 meta, 2 index
-- ARGV: 1 thread id, 2 user id, 3 title, 4 now (ms), 5 ttl (ms), 6 '1' when the title is
--       provisional (none was given: the model may write one after the first reply)
-- Returns 1 when created, 0 when the id was taken.
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
redis.call('HSET', KEYS[1], 'id', ARGV[1], 'userId', ARGV[2], 'title', ARGV[3],
  'createdAt', ARGV[4], 'updatedAt', ARGV[4], 'messageCount', 0)
if ARGV[6] == '1' then
  redis.call('HSET', KEYS[1], 'titleAuto', '1')
end
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[1])
redis.call('PEXPIRE', KEYS[2], ARGV[5])
search_changed(KEYS[2], ARGV[1], ARGV[5])
return 1
