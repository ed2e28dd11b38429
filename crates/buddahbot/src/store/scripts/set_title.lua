-- Sets a model-written title: over a provisional one (`titleAuto`), or over any when forced
-- (a title asked for on demand). The title is then the thread's own. Also counts the tokens
-- the model spent on it toward the user's day (whether or not the title is kept), so a title
-- costs one round trip. The field names are those of store/schema.rs.
-- A new title is named in the user's `search:changed` set (keys.rs), for search to read,
-- while the user has a search index (its root; the next one starts from every thread).
-- KEYS: 1 meta, 2 the day's token counter, 3 the user's search:changed set, 4 its root
-- ARGV: 1 title ('' when the model gave none), 2 '1' to force, 3 tokens spent, 4 token
--       counter ttl (s), 5 thread id, 6 ttl (ms)
-- Returns 1 when set; 0 when not (no title, the thread is gone, or the user named it).
local tokens = tonumber(ARGV[3])
if tokens > 0 and redis.call('INCRBY', KEYS[2], tokens) == tokens then
  redis.call('EXPIRE', KEYS[2], ARGV[4])
end
if ARGV[1] == '' then
  return 0
end
local meta = redis.call('HMGET', KEYS[1], 'id', 'titleAuto')
if not meta[1] then
  return 0
end
if ARGV[2] ~= '1' and meta[2] ~= '1' then
  return 0
end
redis.call('HSET', KEYS[1], 'title', ARGV[1])
redis.call('HDEL', KEYS[1], 'titleAuto')
if redis.call('EXISTS', KEYS[4]) == 1 and redis.call('SADD', KEYS[3], ARGV[5]) == 1 then
  redis.call('PEXPIRE', KEYS[3], ARGV[6])
end
return 1
