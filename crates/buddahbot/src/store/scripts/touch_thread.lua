-- Writes to an existing thread: renames it and/or appends messages, bumps updatedAt, and
-- restarts the TTL of all three keys. Nothing is created when the thread does not exist,
-- so a write can never resurrect a deleted or expired thread as a half-empty husk.
-- Appended messages continue the active branch (tree.lua).
-- KEYS: 1 meta, 2 messages, 3 index, 4 tree, 5 path
-- ARGV: 1 thread id, 2 now (ms), 3 ttl (ms), 4 new title or '', 5 model or '',
--       6.. message JSON to append, oldest first
-- Returns the meta hash as a flat array, or nil when the thread does not exist.
tree_load()
if redis.call('EXISTS', KEYS[1]) == 0 then
  return nil
end
local appended = #ARGV - 5
local treed = false
if appended > 0 then
  local f = redis.call('HMGET', KEYS[1], 'tree', 'activeLeafId')
  treed = f[1] == '1'
  local count = redis.call('RPUSH', KEYS[2], unpack(ARGV, 6))
  local parent = treed and (f[2] and Tree.index(KEYS[4], f[2]) or -1)
  local last_id = nil
  for k = 6, #ARGV do
    local index = count - appended + k - 6
    last_id = tree_id_of(ARGV[k])
    if treed then
      Tree.add(KEYS[4], last_id, index, parent)
      Tree.push(KEYS[4], KEYS[5], index, parent)
      parent = index
    end
  end
  redis.call('HSET', KEYS[1], 'messageCount', count, 'activeLeafId', last_id)
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
if treed or redis.call('HGET', KEYS[1], 'tree') == '1' then
  redis.call('PEXPIRE', KEYS[4], ARGV[3])
  redis.call('PEXPIRE', KEYS[5], ARGV[3])
end
return redis.call('HGETALL', KEYS[1])
