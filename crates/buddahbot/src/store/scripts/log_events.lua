-- Appends a batch of a running generation's events to its stream (one entry: its last event's
-- id, the events joined by newlines) and answers whether the generation was asked to stop.
-- A deleted thread gets no stream back: its content must not outlive the deletion.
-- KEYS: 1 meta, 2 stream
-- ARGV: 1 assistant message id, 2 stream ttl (ms), 3 cap (entries), then, when there are
--       events, 4 the entry id and 5 the events
-- Returns 1 when the generation of ARGV[1] was asked to stop (or its thread is gone), else 0.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 1
end
if ARGV[4] then
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], ARGV[4], 'd', ARGV[5])
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
end
if redis.call('HGET', KEYS[1], 'stopRequested') == ARGV[1] then
  return 1
end
return 0
