-- Appends a batch of a running generation's events to its stream (one entry: its last event's
-- id, the events joined by newlines) and answers whether the generation was asked to stop.
-- A deleted thread gets no stream back: its content must not outlive the deletion; a thread
-- whose stream is another generation's (or that was made again) gets none of these events.
-- KEYS: 1 meta, 2 stream
-- ARGV: 1 assistant message id, 2 stream ttl (ms), 3 cap (entries), then, when there are
--       events, 4 the entry id and 5 the events
-- Returns 1 when the generation of ARGV[1] was asked to stop (or its thread is gone), else 0.
local meta = redis.call('HMGET', KEYS[1], 'id', 'streamId', 'stopRequested')
if not meta[1] then
  return 1
end
-- Only into its own stream: not another generation's, nor a thread made again under the id.
if ARGV[4] and meta[2] == ARGV[1] then
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], ARGV[4], 'd', ARGV[5])
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
end
if meta[3] == ARGV[1] then
  return 1
end
return 0
