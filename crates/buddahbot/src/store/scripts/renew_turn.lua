-- Extends a generation's lease, on the thread and on its turn, while it is still the one
-- generating, and hands it the signals the control channel may have missed. One round trip.
-- KEYS: 1 meta, 2 turns
-- ARGV: 1 assistant message id, 2 user message id, 3 new lease end (ms)
-- Returns -1 when the thread is gone, 0 when the generation no longer holds it, else 1 plus
-- 2 when it was asked to stop plus 4 when a resumer waits for its events.
local meta = redis.call('HMGET', KEYS[1], 'id', 'activeMessageId', 'stopRequested',
  'streamWanted')
if not meta[1] then
  return -1
end
if meta[2] ~= ARGV[1] then
  return 0
end
redis.call('HSET', KEYS[1], 'activeUntil', ARGV[3])
redis.call('HSET', KEYS[2], ARGV[2], 'g:' .. ARGV[1] .. ':' .. ARGV[3])
local signals = 1
if meta[3] == ARGV[1] then
  signals = signals + 2
end
if meta[4] == ARGV[1] then
  signals = signals + 4
end
return signals
