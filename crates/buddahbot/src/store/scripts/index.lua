-- Library prepended to the scripts that touch a thread's place in its user's listings (see
-- scripts.rs). A thread is listed in `<index>` (its user's threads not archived) or
-- `<index>:archived`, and also in `<index>:pinned` when pinned and `<index>:tag:<tag>` for
-- each tag (lower case), all scored by `updatedAt`, so every filter reads a page in O(page).
-- The sets share the user's hash tag. Field names are those of store/schema.rs.
-- Each write also names the thread in the user's `search:changed` set, for the search index
-- to read it again (store/search.rs, keys.rs), while the user has an index (the next one
-- starts from every thread).

-- A key of the user's search index: `<index>` is `user:{<id>}:threads`.
local function search_key(index, suffix)
  return string.sub(index, 1, -8) .. 'search' .. suffix
end

local function search_changed(index, id, ttl)
  if redis.call('EXISTS', search_key(index, '')) == 0 then
    return
  end
  local changed = search_key(index, ':changed')
  if redis.call('SADD', changed, id) == 1 then
    redis.call('PEXPIRE', changed, ttl)
  end
end

-- `f`: the thread's `archived`, `pinned` and `tags` when the caller has read them (read
-- here otherwise). The listings' time to live starts again, unless `slide` is false (a
-- listing that gains the thread gets one in any case).
local function reindex(index, id, score, meta, ttl, f, slide)
  f = f or redis.call('HMGET', meta, 'archived', 'pinned', 'tags')
  local sets = {}
  if f[1] == '1' then
    redis.call('ZREM', index, id)
    sets[#sets + 1] = index .. ':archived'
  else
    sets[#sets + 1] = index
  end
  if f[2] == '1' then
    sets[#sets + 1] = index .. ':pinned'
  end
  if f[3] then
    for _, tag in ipairs(cjson.decode(f[3])) do
      sets[#sets + 1] = index .. ':tag:' .. string.lower(tag)
    end
  end
  for k = 1, #sets do
    if redis.call('ZADD', sets[k], score, id) == 1 or slide ~= false then
      redis.call('PEXPIRE', sets[k], ttl)
    end
  end
  search_changed(index, id, ttl)
end

-- Every listing a thread may be in, for its deletion.
local function unindex(index, id, meta)
  local f = redis.call('HMGET', meta, 'tags', 'externalId')
  redis.call('ZREM', index, id)
  redis.call('ZREM', index .. ':archived', id)
  redis.call('ZREM', index .. ':pinned', id)
  if f[1] then
    for _, tag in ipairs(cjson.decode(f[1])) do
      redis.call('ZREM', index .. ':tag:' .. string.lower(tag), id)
    end
  end
  if f[2] and redis.call('HGET', index .. ':external', f[2]) == id then
    redis.call('HDEL', index .. ':external', f[2])
  end
  -- Its documents in the search index die with its number (searches drop them).
  local root = search_key(index, '')
  local state = redis.call('HGET', root, 't:' .. id)
  if state then
    redis.call('HDEL', root, 't:' .. id, 'n:' .. string.match(state, '^%d+'))
  end
  redis.call('SREM', search_key(index, ':changed'), id)
end

