-- Sets a thread's organisation and moves it between its listings (library: index.lua),
-- without touching `updatedAt` (archiving or tagging is not activity). Each field is left
-- alone when its argument is ''. The field names are those of store/schema.rs.
-- KEYS: 1 meta, 2 index
-- ARGV: 1 thread id, 2 archived ('1' | '0'), 3 pinned ('1' | '0'), 4 tags (JSON list), 5
--       metadata (JSON object), 6 external id ('-' to clear it), 7 ttl (ms)
-- Returns 1 when set, 0 when the thread does not exist, -1 when another thread of the user
-- has that external id.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
local id = ARGV[1]
local old = redis.call('HMGET', KEYS[1], 'tags', 'externalId', 'updatedAt')
local external = KEYS[2] .. ':external'
if ARGV[6] ~= '' then
  if ARGV[6] ~= '-' then
    local owner = redis.call('HGET', external, ARGV[6])
    if owner and owner ~= id and redis.call('EXISTS', string.match(KEYS[1], '^(.-}:thread:)') .. owner .. ':meta') == 1 then
      return -1
    end
  end
  if old[2] and redis.call('HGET', external, old[2]) == id then
    redis.call('HDEL', external, old[2])
  end
  if ARGV[6] == '-' then
    redis.call('HDEL', KEYS[1], 'externalId')
  else
    redis.call('HSET', external, ARGV[6], id)
    redis.call('PEXPIRE', external, ARGV[7])
    redis.call('HSET', KEYS[1], 'externalId', ARGV[6])
  end
end
if ARGV[3] == '1' then
  redis.call('HSET', KEYS[1], 'pinned', '1')
elseif ARGV[3] == '0' then
  redis.call('HDEL', KEYS[1], 'pinned')
  redis.call('ZREM', KEYS[2] .. ':pinned', id)
end
if ARGV[4] ~= '' then
  if old[1] then
    for _, tag in ipairs(cjson.decode(old[1])) do
      redis.call('ZREM', KEYS[2] .. ':tag:' .. string.lower(tag), id)
    end
  end
  if ARGV[4] == '[]' then
    redis.call('HDEL', KEYS[1], 'tags')
  else
    redis.call('HSET', KEYS[1], 'tags', ARGV[4])
  end
end
if ARGV[5] ~= '' then
  if ARGV[5] == '{}' then
    redis.call('HDEL', KEYS[1], 'metadata')
  else
    redis.call('HSET', KEYS[1], 'metadata', ARGV[5])
  end
end
if ARGV[2] == '1' then
  redis.call('HSET', KEYS[1], 'archived', '1')
elseif ARGV[2] == '0' then
  redis.call('HDEL', KEYS[1], 'archived')
  redis.call('ZREM', KEYS[2] .. ':archived', id)
end
reindex(KEYS[2], id, old[3], KEYS[1], ARGV[7])
return 1
