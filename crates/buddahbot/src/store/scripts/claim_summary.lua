-- Claims the writing of a thread's context summary for a while, so that one writer at a time
-- asks the model for it. The field names are those of store/schema.rs.
-- KEYS: 1 meta
-- ARGV: 1 now (ms), 2 claim end (ms), 3 the number of messages the new summary would cover
-- Returns 1 when claimed; 0 when the thread is gone, another writer holds the claim, or the
-- stored summary already covers as many messages.
local meta = redis.call('HMGET', KEYS[1], 'id', 'summarizingUntil', 'contextSummaryCount')
if not meta[1] then
  return 0
end
if meta[2] and tonumber(meta[2]) > tonumber(ARGV[1]) then
  return 0
end
if meta[3] and tonumber(meta[3]) >= tonumber(ARGV[3]) then
  return 0
end
redis.call('HSET', KEYS[1], 'summarizingUntil', ARGV[2])
return 1
