-- Marks a turn failed before any reply was stored, so a retry may generate again, and frees
-- the thread. Leaves both alone when another attempt has taken them over since. Events the
-- client was sent end the stream (library: stream.lua), so resumers see the failure too. A
-- failed regenerate shows the reply it was to replace again (meta `leafBeforeTurn`).
-- KEYS: 1 turns, 2 meta, 3 stream, 4 tree, 5 path
-- ARGV: 1 user message id, 2 assistant message id of the failed attempt, 3 now (ms),
--       4.. the stream's last events (stream.lua; none when nothing was sent)
tree_load()
local current = redis.call('HGET', KEYS[1], ARGV[1])
if current and string.sub(current, 1, #ARGV[2] + 2) == 'g:' .. ARGV[2] then
  redis.call('HSET', KEYS[1], ARGV[1], 'f')
end
local meta = redis.call('HMGET', KEYS[2], 'activeMessageId', 'streamId', 'leafBeforeTurn')
if #ARGV > 5 and meta[2] == ARGV[2] then
  end_stream(KEYS[3], 4)
  redis.call('HSET', KEYS[2], 'streamEndedAt', ARGV[3])
end
if meta[1] == ARGV[2] then
  redis.call('HDEL', KEYS[2], 'activeMessageId', 'activeUntil', 'stopRequested', 'streamWanted',
    'replyParent', 'leafBeforeTurn')
  redis.call('HSET', KEYS[2], 'lastStatus', 'error')
  local before = meta[3] and Tree.index(KEYS[4], meta[3])
  if before then
    redis.call('HSET', KEYS[2], 'activeLeafId', meta[3])
    Tree.path_to(KEYS[4], KEYS[5], before)
  end
  return 1
end
return 0
