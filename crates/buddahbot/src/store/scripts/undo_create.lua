-- Takes back a thread's creation whose answer never came back (its request got 503), so the
-- retry creates the thread instead of meeting `thread_exists`, and no half-made thread is
-- left (library: index.lua). Deletes the thread only while it is the one that request made
-- (its `createdAt`) and nothing but that request wrote to it: at most ARGV 3 messages (what
-- the request itself appended), no generation, no share link. Runs after the creation, on
-- the same connection, and may be sent again.
-- KEYS: 1 index, 2 meta, 3.. the thread's other keys
-- ARGV: 1 thread id, 2 the creation's createdAt (ms), 3 most messages the request wrote
-- Returns the number of keys deleted.
local meta = redis.call('HMGET', KEYS[2], 'createdAt', 'messageCount', 'activeMessageId',
  'shareToken')
if meta[1] ~= ARGV[2] or tonumber(meta[2] or '0') > tonumber(ARGV[3]) or meta[3] or meta[4] then
  return 0
end
unindex(KEYS[1], ARGV[1], KEYS[2])
return redis.call('DEL', unpack(KEYS, 2))
