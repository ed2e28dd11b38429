-- Marks a turn failed before any reply was stored, so a retry may generate again, and frees
-- the thread. Leaves both alone when another attempt has taken them over since.
-- KEYS: 1 turns, 2 meta
-- ARGV: 1 user message id, 2 assistant message id of the failed attempt
local current = redis.call('HGET', KEYS[1], ARGV[1])
if current and string.sub(current, 1, #ARGV[2] + 2) == 'g:' .. ARGV[2] then
  redis.call('HSET', KEYS[1], ARGV[1], 'f')
end
if redis.call('HGET', KEYS[2], 'activeMessageId') == ARGV[2] then
  redis.call('HDEL', KEYS[2], 'activeMessageId', 'activeUntil')
  redis.call('HSET', KEYS[2], 'lastStatus', 'error')
  return 1
end
return 0
