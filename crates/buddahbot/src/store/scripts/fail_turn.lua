-- Marks a turn failed before any reply was stored, so a retry may generate again. Leaves the
-- turn alone when another attempt has taken it over since.
-- KEYS: 1 turns
-- ARGV: 1 user message id, 2 assistant message id of the failed attempt
local current = redis.call('HGET', KEYS[1], ARGV[1])
if current and string.sub(current, 1, #ARGV[2] + 2) == 'g:' .. ARGV[2] then
  redis.call('HSET', KEYS[1], ARGV[1], 'f')
  return 1
end
return 0
