-- Sets a model-written title: over a provisional one (`titleAuto`), or over any when forced
-- (a title asked for on demand). The title is then the thread's own. The field names are
-- those of store/schema.rs.
-- KEYS: 1 meta
-- ARGV: 1 title, 2 '1' to force
-- Returns 1 when set; 0 when the thread is gone or the user named it meanwhile.
local meta = redis.call('HMGET', KEYS[1], 'id', 'titleAuto')
if not meta[1] then
  return 0
end
if ARGV[2] ~= '1' and meta[2] ~= '1' then
  return 0
end
redis.call('HSET', KEYS[1], 'title', ARGV[1])
redis.call('HDEL', KEYS[1], 'titleAuto')
return 1
