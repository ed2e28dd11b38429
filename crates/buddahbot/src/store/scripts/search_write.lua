-- Adds one thread's words to its user's search index (store/search.rs): the documents of
-- its messages from list index ARGV[5] (where the index stood for it) to ARGV[6], and its
-- title. The thread gets a number the first time; a deleted thread's number is never reused.
-- When the index now holds everything the thread has, the thread leaves `changed`.
-- KEYS: 1 root (hash), 2 changed (set), 3 meta, 4 messages
-- ARGV: 1 generation, 2 thread id, 3 thread createdAt (ms), 4 updatedAt as read, 5 from,
--       6 to, 7 title as read, 8 when the generation's keys expire (ms),
--       9.. per word: the word, n, then n pairs (time in ms, document) where a document is a
--       list index or 't' (the title)
-- Returns 'ok'; 'gone' (the thread was deleted: it leaves `changed`), 'moved' (the thread or
-- the index changed since the caller read them: nothing written), 'stale' (another
-- generation started).
local root = KEYS[1]
local id = ARGV[2]
if redis.call('HGET', root, 'gen') ~= ARGV[1] then
  return 'stale'
end
local meta = redis.call('HMGET', KEYS[3], 'createdAt', 'updatedAt', 'title')
if not meta[1] then
  redis.call('SREM', KEYS[2], id)
  return 'gone'
end
if meta[1] ~= ARGV[3] then
  return 'moved'
end
local field = 't:' .. id
local state = redis.call('HGET', root, field)
local num, count
if state then
  local n, c, created = string.match(state, '^(%d+) (%d+) (%d+)$')
  if created == ARGV[3] then
    num, count = n, c
  else
    redis.call('HDEL', root, 'n:' .. n)
  end
end
if not num then
  num = tostring(redis.call('HINCRBY', root, 'next', 1))
  count = '0'
  redis.call('HSET', root, 'n:' .. num, id)
end
if count ~= ARGV[5] then
  return 'moved'
end
local base = root .. ':' .. ARGV[1] .. ':'
-- A document's score: its time (ms) × 1000 plus a number of its own below 1000, so documents
-- of one millisecond (a thread's title and its messages, say) rarely tie; exact in a double.
local function score(ms, doc)
  local own = tonumber(num) * 37 + (doc == 't' and 999 or tonumber(doc))
  return string.format('%.0f', tonumber(ms) * 1000 + own % 1000)
end
local expire = ARGV[8]
local words = {}
local i = 9
while i <= #ARGV do
  local word, n = ARGV[i], tonumber(ARGV[i + 1])
  local args = {}
  for k = 0, n - 1 do
    local doc = ARGV[i + 3 + 2 * k]
    args[#args + 1] = score(ARGV[i + 2 + 2 * k], doc)
    args[#args + 1] = num .. ':' .. doc
  end
  local key = base .. 'w:' .. word
  redis.call('ZADD', key, unpack(args))
  redis.call('PEXPIREAT', key, expire)
  words[#words + 1] = 0
  words[#words + 1] = word
  i = i + 2 + 2 * n
end
if #words > 0 then
  redis.call('ZADD', base .. 'dict', unpack(words))
  redis.call('PEXPIREAT', base .. 'dict', expire)
end
redis.call('HSET', root, field, num .. ' ' .. ARGV[6] .. ' ' .. ARGV[3])
if tonumber(ARGV[6]) == redis.call('LLEN', KEYS[4]) and meta[2] == ARGV[4]
    and meta[3] == ARGV[7] then
  redis.call('SREM', KEYS[2], id)
end
return 'ok'
