-- Library prepended to the scripts that end a generation (see scripts.rs): appends the last
-- events of its stream, marking the final one, and starts the stream's expiry.
-- ARGV[a0]: stream ttl (ms), ARGV[a0 + 1]: cap (entries), then (entry id, event) pairs.
local function end_stream(key, a0)
  local last = #ARGV - 1
  for i = a0 + 2, last, 2 do
    if i == last then
      redis.call('XADD', key, 'MAXLEN', '~', ARGV[a0 + 1], ARGV[i], 'd', ARGV[i + 1], 'e', '1')
    else
      redis.call('XADD', key, 'MAXLEN', '~', ARGV[a0 + 1], ARGV[i], 'd', ARGV[i + 1])
    end
  end
  redis.call('PEXPIRE', key, ARGV[a0])
end
