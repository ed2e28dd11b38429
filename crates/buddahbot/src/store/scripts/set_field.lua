-- Sets one field of a thread's meta, when the thread exists (a write never resurrects a
-- deleted thread). The field names are those of store/schema.rs.
-- KEYS: 1 meta
-- ARGV: 1 field, 2 value
-- Returns 1 when set, 0 when the thread is gone.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
