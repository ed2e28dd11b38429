-- What a resumer needs to know of the thread's latest generation; when it is still running,
-- also asks it to write its events to the stream log from now on (the generator keeps them
-- in memory while nobody resumes): sets `streamWanted` (which its lease renewal reads) and
-- publishes `follow <id>` on the control channel of the process that runs it.
-- KEYS: 1 meta
-- ARGV: 1 now (ms)
-- Returns streamId, streamStart, streamFormat, streamEndedAt, activeMessageId, activeUntil
-- (each false when absent), as stream_info reads them.
local meta = redis.call('HMGET', KEYS[1], 'streamId', 'streamStart', 'streamFormat',
  'streamEndedAt', 'activeMessageId', 'activeUntil', 'streamOwner', 'streamWanted')
local id = meta[1]
if id and meta[5] == id and tonumber(meta[6] or '0') > tonumber(ARGV[1]) and meta[8] ~= id then
  redis.call('HSET', KEYS[1], 'streamWanted', id)
  if meta[7] then
    redis.call('PUBLISH', meta[7], 'follow ' .. id)
  end
end
return {meta[1], meta[2], meta[3], meta[4], meta[5], meta[6]}
