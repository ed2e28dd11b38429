-- Replaces one stored message (found by the caller at `index`) when it is still what the
-- caller read there, and records the feedback it now carries in the user's feedback index
-- and data (or removes it). A write never resurrects a deleted thread. The field names are
-- those of store/schema.rs.
-- KEYS: 1 meta, 2 messages, 3 feedback index, 4 feedback data
-- ARGV: 1 index, 2 the message as read, 3 the message to write, 4 the feedback entry's key
--       (`<threadId>/<messageId>`), 5 its JSON ('' to remove it), 6 now (ms), 7 ttl (ms)
-- Returns 1 when written, 0 when the thread is gone, -1 when the message changed meanwhile.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
if redis.call('LINDEX', KEYS[2], ARGV[1]) ~= ARGV[2] then
  return -1
end
redis.call('LSET', KEYS[2], ARGV[1], ARGV[3])
if ARGV[5] == '' then
  redis.call('ZREM', KEYS[3], ARGV[4])
  redis.call('HDEL', KEYS[4], ARGV[4])
else
  redis.call('ZADD', KEYS[3], ARGV[6], ARGV[4])
  redis.call('HSET', KEYS[4], ARGV[4], ARGV[5])
  redis.call('PEXPIRE', KEYS[3], ARGV[7])
  redis.call('PEXPIRE', KEYS[4], ARGV[7])
end
return 1
