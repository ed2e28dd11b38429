-- Starts a chat turn: counts it against the caller's rate limits (library: limits.lua),
-- stores the user's message (once), creating the thread when asked, and records that its
-- reply is being generated. One round trip, atomic. The field names, turn states and the
-- lease rule are those of store/schema.rs; the branches, those of tree.lua.
-- KEYS: 1 meta, 2 messages, 3 index, 4 turns, 5 stream, 6 tree, 7 path, 8.. the limits' key
--       (when any limit applies) and the token counter
-- ARGV: 1 thread id, 2 now (ms), 3 ttl (ms), 4 the turn's key (its first message's id), 5 the
--       messages it adds (the user's, or tool results), one JSON document per line,
--       6 assistant message id, 7 lease end (ms), 8 '1' to create a missing thread,
--       9 user id, 10 title for a new thread, 11 stream format ('ui' | 'openai' | '' when
--       the reply is not streamed), 12 '1' to regenerate an answered turn, 13 the control
--       channel of the generating process, 14 where the messages go: '' after the active
--       leaf, 'c:<id>' under message <id>, 's:<id>' beside it (an edit of it), 15.. the
--       limits as limits.lua reads them
-- Returns {outcome, limit, remaining, reset (ms), retry after (ms), detail, {what the model
-- call needs of the thread: prompt chars and prompt tokens its last turn measured, its
-- context summary, the number of messages it covers and their fingerprint ('' when absent),
-- '1' when this is its first turn under a provisional title, and the turn's key: ARGV 4, or
-- the version of it on the active branch that a regenerate means}}
-- where outcome is
-- 'rate_limited' | 'not_found' | 'in_progress' (detail: assistant id) | 'done' (detail: reply
-- JSON) | 'busy' (another turn is generating; detail: its assistant id) | 'no_parent' (the
-- message ARGV 14 names is not in the thread) | 'started' (message stored) | 'retry' (stored
-- by an earlier attempt).
local now = tonumber(ARGV[2])
local decision = rate_limit(8, 15, now)
local meta = {}
local wants_title = false
-- The turn's key: ARGV 4, or the edited version of it a regenerate means.
local key = ARGV[4]
local function answer(outcome, detail)
  return {outcome, decision[2], decision[3], decision[4], decision[5], detail or '',
    {meta[8] or '', meta[9] or '', meta[10] or '', meta[11] or '', meta[12] or '',
      wants_title and '1' or '', key}}
end
if decision[1] == 0 then
  return answer('rate_limited')
end
meta = redis.call('HMGET', KEYS[1], 'id', 'activeMessageId', 'activeUntil', 'streamId',
  'streamEndedAt', 'stopRequested', 'streamWanted', 'promptChars', 'promptTokens',
  'contextSummary', 'contextSummaryCount', 'contextSummaryHash', 'titleAuto', 'messageCount',
  'tree', 'activeLeafId', 'archived', 'pinned', 'tags')
local exists = meta[1]
if not exists and ARGV[8] ~= '1' then
  return answer('not_found')
end
local tree, path = KEYS[6], KEYS[7]
local treed = meta[15] == '1'
local leaf = meta[16]
local choice, target = string.match(ARGV[14], '^(%a):([%w_%-]+)$')
if treed or choice or ARGV[12] == '1' then
  -- Only a branched thread, an edit or a regenerate reads or makes the tree.
  tree_load()
end
if not exists and choice then
  return answer('no_parent', target)
end
if ARGV[12] == '1' and treed and leaf then
  -- A regenerate names its turn by the client's id for the user message; after an edit the
  -- client still calls the edited version by the original's id: take the version on the
  -- active branch.
  key = Tree.turn_key(tree, leaf, key)
end
local outcome = 'started'
local prior = exists and redis.call('HGET', KEYS[4], key)
-- The list index of the reply's parent, and of an answered reply a regenerate replaces.
local reply_parent, replaced = nil, nil
if prior then
  local state, a, b = string.match(prior, '^(%a):?([^:]*):?(.*)$')
  if state == 'g' and tonumber(b) and tonumber(b) > now then
    return answer('in_progress', a)
  end
  if state == 'd' then
    local reply = redis.call('LINDEX', KEYS[2], tonumber(a))
    if reply and ARGV[12] ~= '1' then
      if choice and treed and meta[2] == nil then
        -- An edit sent again: its branch is the one the client shows.
        redis.call('HSET', KEYS[1], 'activeLeafId', b)
      end
      return answer('done', reply)
    end
    if reply then
      replaced = tonumber(a)
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
  append(fields, {'id', ARGV[1], 'userId', ARGV[9], 'title', ARGV[10], 'createdAt', ARGV[2],
    'titleAuto', '1'})
end
-- The thread's first turn, under a provisional title: the model may write it one.
wants_title = not prior and (not exists or (meta[13] == '1' and tonumber(meta[14] or '0') == 0))
local inputs = ARGV[5] ~= '' and {ARGV[5]} or {}
if string.find(ARGV[5], '\n', 1, true) then
  -- Several messages (tool results); one is found with a plain search, not a pattern read
  -- character by character.
  inputs = {}
  for line in string.gmatch(ARGV[5], '[^\n]+') do
    inputs[#inputs + 1] = line
  end
end
if not prior then
  -- Where the messages go: after the active leaf, or under (beside) a named message.
  local parent = nil
  if choice then
    if not treed then
      local last = redis.call('LINDEX', KEYS[2], -1)
      if not (choice == 'c' and last and tree_id_of(last) == target
          and not tree_superseded(last)) then
        Tree.build(KEYS[1], KEYS[2], tree, path, ARGV[3])
        treed = true
        leaf = redis.call('HGET', KEYS[1], 'activeLeafId')
      end
    end
    if treed then
      parent = Tree.index(tree, target)
      if not parent then
        return answer('no_parent', target)
      end
      if choice == 's' then
        local _, up = Tree.node(tree, parent)
        parent = up
      end
      if parent ~= (leaf and Tree.index(tree, leaf) or -1) then
        -- A new branch: the active one is now the way to its parent.
        Tree.path_to(tree, path, parent)
      end
    end
  elseif treed then
    parent = leaf and Tree.index(tree, leaf) or -1
  end
  -- The list's length is the thread's message count.
  local count = redis.call('RPUSH', KEYS[2], unpack(inputs))
  fields[#fields + 1] = 'messageCount'
  fields[#fields + 1] = count
  local first = count - #inputs
  local last_id = nil
  for k = 1, #inputs do
    local line = inputs[k]
    last_id = tree_id_of(line)
    if treed then
      local index = first + k - 1
      Tree.add(tree, last_id, index, parent, k == 1 and choice == 's' and target or nil)
      Tree.push(tree, path, index, parent)
      parent = index
    end
  end
  reply_parent = count - 1
  fields[#fields + 1] = 'activeLeafId'
  fields[#fields + 1] = last_id
elseif replaced then
  -- Regenerate: the new reply will be a sibling of the old one, which stays. Until it is
  -- stored the branch ends at their parent; if it fails, the old reply shows again.
  if not treed then
    Tree.build(KEYS[1], KEYS[2], tree, path, ARGV[3])
    treed = true
    leaf = redis.call('HGET', KEYS[1], 'activeLeafId')
  end
  local _, up = Tree.node(tree, replaced)
  reply_parent = up
  Tree.path_to(tree, path, reply_parent)
  if leaf then
    fields[#fields + 1] = 'leafBeforeTurn'
    fields[#fields + 1] = leaf
  end
elseif treed then
  -- A retry: the turn's messages were stored together, from its key on.
  reply_parent = (Tree.index(tree, key) or 0) + #inputs - 1
  if reply_parent ~= (leaf and Tree.index(tree, leaf) or -1) then
    Tree.path_to(tree, path, reply_parent)
  end
end
if treed and reply_parent then
  fields[#fields + 1] = 'replyParent'
  fields[#fields + 1] = reply_parent
  if reply_parent >= 0 then
    fields[#fields + 1] = 'activeLeafId'
    fields[#fields + 1] = (Tree.node(tree, reply_parent))
  end
end
local stale = {}
if ARGV[11] ~= '' then
  append(fields, {'streamId', ARGV[6], 'streamStart', ARGV[2], 'streamFormat', ARGV[11],
    'streamOwner', ARGV[13]})
elseif meta[4] then
  -- Not streamed: nothing to resume.
  stale = {'streamId', 'streamStart', 'streamFormat', 'streamOwner'}
end
redis.call('HSET', KEYS[1], unpack(fields))
local ended = {'streamEndedAt', 'stopRequested', 'streamWanted'}
for i = 1, 3 do
  if meta[i + 4] then
    stale[#stale + 1] = ended[i]
  end
end
if #stale > 0 then
  redis.call('HDEL', KEYS[1], unpack(stale))
end
if meta[4] then
  redis.call('DEL', KEYS[5])
end
redis.call('HSET', KEYS[4], key, 'g:' .. ARGV[6] .. ':' .. ARGV[7])
-- The thread's keys live on from here (its listings, in reindex); finish_turn, moments
-- later, does not extend them again.
reindex(KEYS[3], ARGV[1], ARGV[2], KEYS[1], ARGV[3], {meta[17], meta[18], meta[19]})
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
redis.call('PEXPIRE', KEYS[4], ARGV[3])
if treed then
  redis.call('PEXPIRE', tree, ARGV[3])
  redis.call('PEXPIRE', path, ARGV[3])
end
return answer(outcome)
