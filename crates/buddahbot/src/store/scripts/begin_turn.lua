-- Starts a chat turn: counts it against the caller's rate limits (library: limits.lua),
-- stores the user's message (once), creating the thread when asked, and records that its
-- reply is being generated. One round trip, atomic. The field names, turn states and the
-- lease rule are those of store/schema.rs.
-- KEYS: 1 meta, 2 messages, 3 index, 4 turns, 5 stream, 6.. the limits' keys and the token
--       counter
-- ARGV: 1 thread id, 2 now (ms), 3 ttl (ms), 4 the turn's key (its first message's id), 5 the
--       messages it adds (the user's, or tool results), one JSON document per line,
--       6 assistant message id, 7 lease end (ms), 8 '1' to create a missing thread,
--       9 user id, 10 title for a new thread, 11 stream format ('ui' | 'openai' | '' when
--       the reply is not streamed), 12 '1' to regenerate an answered turn, 13 the control
--       channel of the generating process, 14.. the limits as limits.lua reads them
-- Returns {outcome, limit, remaining, reset (ms), retry after (ms), detail, {what the model
-- call needs of the thread: prompt chars and prompt tokens its last turn measured, its
-- context summary, the number of messages it covers and their fingerprint ('' when absent),
-- and '1' when this is its first turn under a provisional title}}
-- where outcome is
-- 'rate_limited' | 'not_found' | 'in_progress' (detail: assistant id) | 'done' (detail: reply
-- JSON) | 'busy' (another turn is generating; detail: its assistant id) | 'not_latest' (a
-- regenerate of a reply that is not the thread's last message) | 'started' (message stored)
-- | 'retry' (stored by an earlier attempt).
local now = tonumber(ARGV[2])
local decision = rate_limit(6, 14, now)
local meta = {}
local wants_title = false
local function answer(outcome, detail)
  return {outcome, decision[2], decision[3], decision[4], decision[5], detail or '',
    {meta[8] or '', meta[9] or '', meta[10] or '', meta[11] or '', meta[12] or '',
      wants_title and '1' or ''}}
end
if decision[1] == 0 then
  return answer('rate_limited')
end
meta = redis.call('HMGET', KEYS[1], 'id', 'activeMessageId', 'activeUntil', 'streamId',
  'streamEndedAt', 'stopRequested', 'streamWanted', 'promptChars', 'promptTokens',
  'contextSummary', 'contextSummaryCount', 'contextSummaryHash', 'titleAuto', 'messageCount')
local exists = meta[1]
if not exists and ARGV[8] ~= '1' then
  return answer('not_found')
end
local outcome = 'started'
local prior = exists and redis.call('HGET', KEYS[4], ARGV[4])
local superseded = nil
if prior then
  local state, a, b = string.match(prior, '^(%a):?([^:]*):?(.*)$')
  if state == 'g' and tonumber(b) and tonumber(b) > now then
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
-- The lease rule: a generation holds the thread while its lease has not run out.
if meta[2] and tonumber(meta[3] or '0') > now then
  return answer('busy', meta[2])
end
local fields = {'updatedAt', ARGV[2], 'activeMessageId', ARGV[6], 'activeUntil', ARGV[7]}
if not exists then
  for _, v in ipairs({'id', ARGV[1], 'userId', ARGV[9], 'title', ARGV[10], 'createdAt', ARGV[2],
      'titleAuto', '1'}) do
    fields[#fields + 1] = v
  end
end
-- The thread's first turn, under a provisional title: the model may write it one.
wants_title = not prior and (not exists or (meta[13] == '1' and tonumber(meta[14] or '0') == 0))
if not prior then
  -- The list's length is the thread's message count.
  local inputs = {}
  for line in string.gmatch(ARGV[5], '[^\n]+') do
    inputs[#inputs + 1] = line
  end
  local count = redis.call('RPUSH', KEYS[2], unpack(inputs))
  fields[#fields + 1] = 'messageCount'
  fields[#fields + 1] = count
end
if superseded then
  -- Regenerate: the old reply stays, marked as replaced by the one about to be generated
  -- (the stored JSON is an object written by the service: the mark goes in front).
  local old = redis.call('LINDEX', KEYS[2], superseded)
  redis.call('LSET', KEYS[2], superseded,
    '{"supersededBy":' .. cjson.encode(ARGV[6]) .. ',' .. string.sub(old, 2))
end
local stale = {}
if ARGV[11] ~= '' then
  for _, v in ipairs({'streamId', ARGV[6], 'streamStart', ARGV[2], 'streamFormat', ARGV[11],
      'streamOwner', ARGV[13]}) do
    fields[#fields + 1] = v
  end
elseif meta[4] then
  -- Not streamed: nothing to resume.
  stale = {'streamId', 'streamStart', 'streamFormat', 'streamOwner'}
end
redis.call('HSET', KEYS[1], unpack(fields))
for i, name in ipairs({'streamEndedAt', 'stopRequested', 'streamWanted'}) do
  if meta[i + 4] then
    stale[#stale + 1] = name
  end
end
if #stale > 0 then
  redis.call('HDEL', KEYS[1], unpack(stale))
end
if meta[4] then
  redis.call('DEL', KEYS[5])
end
redis.call('HSET', KEYS[4], ARGV[4], 'g:' .. ARGV[6] .. ':' .. ARGV[7])
reindex(KEYS[3], ARGV[1], ARGV[2], KEYS[1], ARGV[3])
for i = 1, 4 do
  redis.call('PEXPIRE', KEYS[i], ARGV[3])
end
return answer(outcome)
