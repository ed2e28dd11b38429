-- Deletes messages in place: each becomes its id with `deleted: true`, so the list's indexes
-- (which the turns hash points into) stay right; every view skips them, and the thread's
-- message count leaves them out (`deletedCount`). The field names are those of
-- store/schema.rs.
-- KEYS: 1 meta, 2 messages
-- ARGV: the ids of the messages to delete
-- Returns how many were deleted (0 when the thread is gone).
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
local wanted = {}
for _, id in ipairs(ARGV) do
  wanted[id] = true
end
local deleted = 0
local all = redis.call('LRANGE', KEYS[2], 0, -1)
for i, raw in ipairs(all) do
  local message = cjson.decode(raw)
  if wanted[message.id] and not message.deleted then
    local stub = {id = message.id, role = message.role, content = '', createdAt = message.createdAt,
      deleted = true}
    redis.call('LSET', KEYS[2], i - 1, cjson.encode(stub))
    deleted = deleted + 1
  end
end
if deleted > 0 then
  redis.call('HINCRBY', KEYS[1], 'deletedCount', deleted)
end
return deleted
