-- Starts a chat turn: counts it against the caller's rate limits (library: limits.lua),
-- stores the user's message (once), creating the thread when asked, and records that its
-- reply is being generated. One round trip, atomic.
-- KEYS: 1 meta, 2 messages, 3 index, 4 turns, 5 stream, 6.. the limits' keys and the token
--       counter
-- ARGV: 1 thread id, 2 now (ms), 3 ttl (ms), 4 user message id, 5 user message JSON,
--       6 assistant message id, 7 lease end (ms), 8 '1' to create a missing thread,
--       9 user id, 10 title for a new thread, 11 stream format ('ui' | 'openai' | '' when
--       the reply is not streamed),
--       12 '1' to regenerate an answered turn, 13.. the limits as limits.lua reads them
-- Turn states in KEYS[4]: 'g:<assistant id>:<lease end>' generating, 'd:<list index>:<id>'
-- done, 'f' failed before any reply was stored. The thread's meta holds the one generation
-- allowed at a time: `activeMessageId` and `activeUntil` (lease end, renewed by the
-- generator; a crashed one frees the thread when it runs out), and describes the stream of
-- the latest one: `streamId` (its assistant id), `streamStart` (the ms part of its event
-- ids), `streamFormat`; `streamEndedAt` is set when it ends.
-- Returns {outcome, limit, remaining, reset (ms), retry after (ms), detail} where outcome is
-- 'rate_limited' | 'not_found' | 'in_progress' (detail: assistant id) | 'done' (detail: reply
-- JSON) | 'busy' (another turn is generating; detail: its assistant id) | 'not_latest' (a
-- regenerate of a reply that is not the thread's last message) | 'started' (message stored)
-- | 'retry' (stored by an earlier attempt).
local decision = rate_limit(6, 13, tonumber(ARGV[2]))
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
local superseded = nil
if prior then
  local state, a, b = string.match(prior, '^(%a):?([^:]*):?(.*)$')
  if state == 'g' and tonumber(b) and tonumber(b) > tonumber(ARGV[2]) then
    return answer('in_progress', a)
  end
  if state == 'd' then
    local reply = redis.call('LINDEX', KEYS[2], tonumber(a))
    if reply and ARGV[12] ~= '1' then
      return answer('done', reply)
    end
    if reply then
      if tonumber(a) ~= redis.call('LLEN', KEYS[2]) - 1 then
        return answer('not_latest', b)
      end
      superseded = tonumber(a)
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
if superseded then
  -- Regenerate: the old reply stays, marked as replaced by the one about to be generated
  -- (the stored JSON is an object written by the service: the mark goes in front).
  local old = redis.call('LINDEX', KEYS[2], superseded)
  redis.call('LSET', KEYS[2], superseded,
    '{"supersededBy":' .. cjson.encode(ARGV[6]) .. ',' .. string.sub(old, 2))
end
redis.call('HSET', KEYS[4], ARGV[4], generating)
redis.call('HSET', KEYS[1], 'updatedAt', ARGV[2], 'activeMessageId', ARGV[6], 'activeUntil', ARGV[7])
redis.call('HDEL', KEYS[1], 'streamEndedAt', 'stopRequested')
if ARGV[11] == '' then
  -- Not streamed: nothing to resume.
  redis.call('HDEL', KEYS[1], 'streamId', 'streamStart', 'streamFormat')
else
  redis.call('HSET', KEYS[1], 'streamId', ARGV[6], 'streamStart', ARGV[2], 'streamFormat', ARGV[11])
end
redis.call('DEL', KEYS[5])
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1])
for i = 1, 4 do
  redis.call('PEXPIRE', KEYS[i], ARGV[3])
end
return answer(outcome)
