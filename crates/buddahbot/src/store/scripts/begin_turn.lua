-- Starts a chat turn: counts it against the caller's rate limits (library: limits.lua),
-- stores the user's message (once), creating the thread when asked, and records that its
-- reply is being generated. One round trip, atomic.
-- KEYS: 1 meta, 2 messages, 3 index, 4 turns, 5.. the limits' keys and the token counter
-- ARGV: 1 thread id, 2 now (ms), 3 ttl (ms), 4 user message id, 5 user message JSON,
--       6 assistant message id, 7 lease end (ms), 8 '1' to create a missing thread,
--       9 user id, 10 title for a new thread, 11.. the limits as limits.lua reads them
-- Turn states in KEYS[4]: 'g:<assistant id>:<lease end>' generating, 'd:<list index>:<id>'
-- done, 'f' failed before any reply was stored. The thread's meta holds the one generation
-- allowed at a time: `activeMessageId` and `activeUntil` (lease end, renewed by the
-- generator; a crashed one frees the thread when it runs out).
-- Returns {outcome, limit, remaining, reset (ms), retry after (ms), detail} where outcome is
-- 'rate_limited' | 'not_found' | 'in_progress' (detail: assistant id) | 'done' (detail: reply
-- JSON) | 'busy' (another turn is generating; detail: its assistant id) | 'started' (message
-- stored) | 'retry' (stored by an earlier attempt).
local decision = rate_limit(5, 11, tonumber(ARGV[2]))
local function answer(outcome, detail)
  return {outcome, decision[2], decision[3], decision[4], decision[5], detail or ''}
end
if decision[1] == 0 then
  return answer('rate_limited')
end
if redis.call('EXISTS', KEYS[1]) == 0 then
  if ARGV[8] ~= '1' then
    return answer('not_found')
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
    return answer('in_progress', a)
  end
  if state == 'd' then
    local reply = redis.call('LINDEX', KEYS[2], tonumber(a))
    if reply then
      return answer('done', reply)
    end
  end
  -- Failed, abandoned (lease over) or reply gone: generate again, but the user's message is
  -- already stored.
  outcome = 'retry'
end
local active = redis.call('HGET', KEYS[1], 'activeMessageId')
local active_until = tonumber(redis.call('HGET', KEYS[1], 'activeUntil') or '0')
if active and active_until > tonumber(ARGV[2]) then
  return answer('busy', active)
end
if not prior then
  redis.call('RPUSH', KEYS[2], ARGV[5])
  redis.call('HINCRBY', KEYS[1], 'messageCount', 1)
end
redis.call('HSET', KEYS[4], ARGV[4], generating)
redis.call('HSET', KEYS[1], 'updatedAt', ARGV[2], 'activeMessageId', ARGV[6], 'activeUntil', ARGV[7])
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1])
for i = 1, 4 do
  redis.call('PEXPIRE', KEYS[i], ARGV[3])
end
return answer(outcome)
