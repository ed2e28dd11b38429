-- Library prepended to the scripts that end a generation (see scripts.rs): appends the last
-- batch of its stream's events as one entry marked final, and starts the stream's expiry.
-- A generation whose events were all sent has no batch: nothing of it was logged (a resumer
-- that came makes the generator log, and then the last events are a batch), so there is no
-- stream to expire.
-- ARGV[a0]: stream ttl (ms), ARGV[a0 + 1]: cap (entries), then, when there are events, the
-- batch's entry id (its last event's id) and the events joined by newlines.
local function end_stream(key, a0)
  if ARGV[a0 + 2] then
    redis.call('XADD', key, 'MAXLEN', '~', ARGV[a0 + 1], ARGV[a0 + 2], 'd', ARGV[a0 + 3], 'e', '1')
    redis.call('PEXPIRE', key, ARGV[a0])
  end
end
