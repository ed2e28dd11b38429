-- Starts a chat turn: stores the user's message (once), creating the thread when asked, and
-- records that its reply is being generated. One round trip, atomic.
-- KEYS: 1 meta, 2 messages, 3 index, 4 turns
-- ARGV: 1 thread id, 2 now (ms), 3 ttl (ms), 4 user message id, 5 user message JSON,
--       6 assistant message id, 7 lease end (ms), 8 '1' to create a missing thread,
--       9 user id, 10 title for a new thread
-- Turn states in KEYS[4]: 'g:<assistant id>:<lease end>' generating, 'd:<list index>:<id>'
-- done, 'f' failed before any reply was stored.
-- Returns {'not_found'} | {'in_progress', assistant id} | {'done', reply JSON}
--       | {'started'} (message stored) | {'retry'} (message was stored by an earlier attempt)
if redis.call('EXISTS', KEYS[1]) == 0 then
  if ARGV[8] ~= '1' then
    return {'not_found'}
  end
  redis.call('HSET', KEYS[1], 'id', ARGV[1], 'userId', ARGV[9], 'title', ARGV[10],
    'createdAt', ARGV[2], 'updatedAt', ARGV[2], 'messageCount', 0)
end
local generating = 'g:' .. ARGV[6] .. ':' .. ARGV[7]
local prior = redis.call('HGET', KEYS[4], ARGV[4])
local outcome = 'started'
if prior then
  local state, a, b = string.match(prior, '^(%a):?([^:]*):?(.*)$')
  if state == 'g' and tonumber(b) and tonumber(b) > tonumber(ARGV[2]) then
    return {'in_progress', a}
  end
  if state == 'd' then
    local reply = redis.call('LINDEX', KEYS[2], tonumber(a))
    if reply then
      return {'done', reply}
    end
  end
  -- Failed, abandoned (lease over) or reply gone: generate again, but the user's message is
  -- already stored.
  outcome = 'retry'
else
  redis.call('RPUSH', KEYS[2], ARGV[5])
  redis.call('HINCRBY', KEYS[1], 'messageCount', 1)
end
redis.call('HSET', KEYS[4], ARGV[4], generating)
redis.call('HSET', KEYS[1], 'updatedAt', ARGV[2])
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1])
for i = 1, 4 do
  redis.call('PEXPIRE', KEYS[i], ARGV[3])
end
return {outcome}
