-- Asks the thread's running generation to stop: the generator reads `stopRequested` with
-- each batch of events it logs (or on its idle poll), whichever instance it runs on.
-- KEYS: 1 meta
-- ARGV: 1 now (ms)
-- Returns false when the thread does not exist, '' when nothing is generating, '!' when the
-- generation is not streamed (its request runs to the end or is closed), else the assistant
-- message id of the generation asked to stop.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return false
end
local active = redis.call('HGET', KEYS[1], 'activeMessageId')
local active_until = tonumber(redis.call('HGET', KEYS[1], 'activeUntil') or '0')
if not active or active_until <= tonumber(ARGV[1]) then
  return ''
end
if redis.call('HGET', KEYS[1], 'streamId') ~= active then
  return '!'
end
redis.call('HSET', KEYS[1], 'stopRequested', active)
return active
