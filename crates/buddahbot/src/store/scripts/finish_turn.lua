-- Ends a chat turn: stores the assistant's reply and marks the turn done, unless the thread
-- was deleted meanwhile (a write never resurrects a deleted thread). Atomic; sent in one
-- round trip after the `XADD` of the stream's unlogged events but the last, which this
-- script appends itself (large data would cost Redis a byte-by-byte hash as a Lua string).
-- Also adds the reply's tokens to the user's count for the day (the daily token budget),
-- appends the stream's unlogged events (library: stream.lua), so that a resumer sees the end
-- of the stream exactly when the reply is readable, frees the thread for the next generation
-- and records how this one ended.
-- The reply goes under the message begin_turn chose (meta `replyParent`; tree.lua) and ends
-- the thread's active branch.
-- KEYS: 1 meta, 2 messages, 3 index, 4 turns, 5 stream, 6 the day's token counter, 7 tree,
--       8 path
-- ARGV: 1 thread id, 2 now (ms), 3 ttl (ms), 4 user message id, 5 reply JSON,
--       6 assistant message id, 7 model, 8 tokens used, 9 token counter ttl (s),
--       10 last status ('idle' | 'error' | 'stopped'), 11 the prompt's characters and the
--       tokens the model counted in it ('<chars> <tokens>', '' when not measured), 12 the id
--       of the entry the `XADD` before wrote ('' for none), 13 the title the model wrote for
--       the thread's first turn ('' for none; it replaces a provisional title only, and its
--       tokens are in ARGV 8), 14.. the stream's last event (stream.lua)
-- Sent again for a reply it stored already, it changes nothing and returns the same index.
-- Returns the reply's list index, -1 when the thread is gone (or was made again: its turns do
-- not hold this one), or -2 (nothing written) when
-- no events came but a resumer waits for them (`streamWanted`): send them.
local meta = redis.call('HMGET', KEYS[1], 'id', 'activeMessageId', 'streamId', 'streamWanted',
  'tree', 'replyParent', 'titleAuto', 'archived', 'pinned', 'tags', 'stopRequested',
  'leafBeforeTurn')
if not meta[1] then
  -- Deleted meanwhile: the XADD before may have made the stream again.
  redis.call('DEL', KEYS[5])
  return -1
end
-- A thread deleted and made again under the same id is another thread: this turn is not in
-- it, so nothing of it is written there (the events the XADD before added are taken out).
-- A generation that still holds the thread is in it.
local own = meta[2] == ARGV[6]
if not own then
  local state = redis.call('HGET', KEYS[4], ARGV[4])
  if not state then
    if ARGV[12] ~= '' and meta[3] ~= ARGV[6] then
      redis.call('XDEL', KEYS[5], ARGV[12])
    end
    return -1
  end
  -- Stored already: a finish whose answer was lost, sent again (chat/turn.rs `store_later`).
  local index, by = string.match(state, '^d:(%d+):(.*)$')
  if by == ARGV[6] then
    return tonumber(index)
  end
end
if not ARGV[16] and meta[4] == ARGV[6] then
  -- A resumer came for the events after the generator last looked: it must send them.
  return -2
end
local count = redis.call('RPUSH', KEYS[2], ARGV[5])
local fields = {'updatedAt', ARGV[2], 'model', ARGV[7], 'lastStatus', ARGV[10],
  'messageCount', count}
local shown = own or not meta[2]
if shown then
  fields[#fields + 1] = 'activeLeafId'
  fields[#fields + 1] = ARGV[6]
end
if meta[5] == '1' then
  tree_load()
  -- Under the parent begin_turn chose; a generation that lost its lease to another finds
  -- its parent by the turn's key.
  local parent = own and tonumber(meta[6])
    or Tree.index(KEYS[7], ARGV[4]) or -1
  Tree.add(KEYS[7], ARGV[6], count - 1, parent)
  if shown then
    if (Tree.entry_index(redis.call('LINDEX', KEYS[8], -1)) or -1) == parent then
      Tree.push(KEYS[7], KEYS[8], count - 1, parent)
    else
      Tree.path_to(KEYS[7], KEYS[8], count - 1)
    end
  else
    -- Not shown, but a sibling of what may be: the branch shown marks its version.
    local _, _, depth = Tree.node(KEYS[7], count - 1)
    local entry = redis.call('LINDEX', KEYS[8], depth)
    local above = depth > 0 and Tree.entry_index(redis.call('LINDEX', KEYS[8], depth - 1)) or -1
    if entry and above == parent and not string.find(entry, '*', 1, true) then
      redis.call('LSET', KEYS[8], depth, entry .. '*')
    end
  end
  redis.call('PEXPIRE', KEYS[7], ARGV[3])
  redis.call('PEXPIRE', KEYS[8], ARGV[3])
end
if meta[3] == ARGV[6] then
  end_stream(KEYS[5], 14)
  fields[#fields + 1] = 'streamEndedAt'
  fields[#fields + 1] = ARGV[2]
elseif ARGV[12] ~= '' then
  -- The stream is a newer generation's now: take back what the XADD before put in it.
  redis.call('XDEL', KEYS[5], ARGV[12])
end
local chars, tokens = string.match(ARGV[11], '^(%d+) (%d+)$')
if chars then
  -- How this thread's prompts measure: the next turn's estimate of its size starts here.
  append(fields, {'promptChars', chars, 'promptTokens', tokens})
end
local stale = {}
if ARGV[13] ~= '' and meta[7] == '1' then
  -- The model's title, over the provisional one (a title the user gave meanwhile stays). The
  -- search index reads the thread again for it anyway (reindex below).
  fields[#fields + 1] = 'title'
  fields[#fields + 1] = ARGV[13]
  stale[#stale + 1] = 'titleAuto'
end
redis.call('HSET', KEYS[1], unpack(fields))
if own then
  -- The generation's fields, those that are there (a field that is not costs Redis a search
  -- of the whole hash).
  append(stale, {'activeMessageId', 'activeUntil'})
  local names = {'streamWanted', 4, 'replyParent', 6, 'stopRequested', 11, 'leafBeforeTurn', 12}
  for i = 1, #names, 2 do
    if meta[names[i + 1]] then
      stale[#stale + 1] = names[i]
    end
  end
end
if #stale > 0 then
  redis.call('HDEL', KEYS[1], unpack(stale))
end
redis.call('HSET', KEYS[4], ARGV[4], 'd:' .. (count - 1) .. ':' .. ARGV[6])
-- begin_turn extended the thread's keys' lives moments ago; only a key made again since (the
-- messages, after all were deleted) needs one.
reindex(KEYS[3], ARGV[1], ARGV[2], KEYS[1], ARGV[3], {meta[8], meta[9], meta[10]}, false)
if count == 1 then
  redis.call('PEXPIRE', KEYS[2], ARGV[3])
end
local tokens = tonumber(ARGV[8])
if tokens > 0 and redis.call('INCRBY', KEYS[6], tokens) == tokens then
  -- The day's first count made the counter: it expires after the day.
  redis.call('EXPIRE', KEYS[6], ARGV[9])
end
return count - 1
