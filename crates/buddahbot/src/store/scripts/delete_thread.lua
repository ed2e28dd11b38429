-- Deletes a thread's keys and its index entry, and stops its streamed generation if one
-- runs (publishing `stop <id>` on its process's control channel), so no reply outlives the
-- deletion.
-- KEYS: 1 index, 2 meta, 3.. the thread's other keys
-- ARGV: 1 thread id
-- Returns the number of keys deleted.
local meta = redis.call('HMGET', KEYS[2], 'activeMessageId', 'streamId', 'streamOwner')
unindex(KEYS[1], ARGV[1], KEYS[2])
local deleted = redis.call('DEL', unpack(KEYS, 2))
if meta[1] and meta[1] == meta[2] and meta[3] then
  redis.call('PUBLISH', meta[3], 'stop ' .. meta[1])
end
return deleted
