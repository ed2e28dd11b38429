-- Extends a generation's lease, on the thread and on its turn, while it is still the one
-- generating. One round trip.
-- KEYS: 1 meta, 2 turns
-- ARGV: 1 assistant message id, 2 user message id, 3 new lease end (ms)
if redis.call('HGET', KEYS[1], 'activeMessageId') ~= ARGV[1] then
  return 0
end
redis.call('HSET', KEYS[1], 'activeUntil', ARGV[3])
redis.call('HSET', KEYS[2], ARGV[2], 'g:' .. ARGV[1] .. ':' .. ARGV[3])
return 1
