-- Keeps a thread's new context summary, unless the thread was deleted meanwhile (a write
-- never resurrects a deleted thread) or a summary covering more messages was kept since.
-- The field names are those of store/schema.rs.
-- KEYS: 1 meta
-- ARGV: 1 summary, 2 the number of messages it covers, 3 their fingerprint, 4 the id of the
--       last message it covers ('' when unknown)
-- Returns 1 when kept, 0 when not. A count of 0 only gives the claim up.
local meta = redis.call('HMGET', KEYS[1], 'id', 'contextSummaryCount')
if not meta[1] then
  return 0
end
redis.call('HDEL', KEYS[1], 'summarizingUntil')
if ARGV[2] == '0' or (meta[2] and tonumber(meta[2]) >= tonumber(ARGV[2])) then
  return 0
end
redis.call('HSET', KEYS[1], 'contextSummary', ARGV[1], 'contextSummaryCount', ARGV[2],
  'contextSummaryHash', ARGV[3], 'contextSummaryThrough', ARGV[4])
return 1
