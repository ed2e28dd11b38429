-- Asks the thread's running generation to stop: sets `stopRequested` (which its lease
-- renewal reads) and publishes `stop <id>` on the control channel of the process that runs
-- it, which stops it at once.
-- KEYS: 1 meta
-- ARGV: 1 now (ms)
-- Returns false when the thread does not exist, '' when nothing is generating, '!' when the
-- generation is not streamed (its request runs to the end or is closed), else the assistant
-- message id of the generation asked to stop.
local meta = redis.call('HMGET', KEYS[1], 'id', 'activeMessageId', 'activeUntil', 'streamId',
  'streamOwner')
if not meta[1] then
  return false
end
local active = meta[2]
if not active or tonumber(meta[3] or '0') <= tonumber(ARGV[1]) then
  return ''
end
if meta[4] ~= active then
  return '!'
end
redis.call('HSET', KEYS[1], 'stopRequested', active)
if meta[5] then
  redis.call('PUBLISH', meta[5], 'stop ' .. active)
end
return active
