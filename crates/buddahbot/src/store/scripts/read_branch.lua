-- Reads a thread and one page of one of its branches, newest message last, in one round trip
-- (tree.lua). A linear thread is read as a range of its list; one that still holds replies a
-- regenerate replaced before branches existed, or whose branch through a named message is
-- asked for, gets its tree first. A page of the active branch costs a range of its path and
-- one range per run of neighbouring messages, however large the thread; another branch's
-- costs a step up the tree per message.
-- KEYS: 1 meta, 2 messages, 3 tree, 4 path
-- ARGV: 1 the id of a message the branch goes through ('' for the active branch), 2 the
--       page's length, 3 the list index of the message the page ends before ('' for the
--       branch's end), 4 '1' when the branch ends at the message ARGV 1 names (else it goes
--       on to that message's newest leaf)
-- Returns {} when the thread does not exist, else {meta as a flat array, shape, ...}:
--   {meta, 'linear', the first message's list index, the messages (JSON; when that index is
--     not 0, preceded by the message before it)}
--   {meta, 'tree', the list index of the first message when older ones precede it (-1 when
--     none), the id of its parent ('' for none), the messages (JSON), for each of them its
--     parent's children (tree.lua's `c` field)}
--   {meta, 'no_message'} when ARGV 1 names no message of the thread.
tree_load()
local meta = redis.call('HGETALL', KEYS[1])
if #meta == 0 then
  return {}
end
local tree, path = KEYS[3], KEYS[4]
local limit = tonumber(ARGV[2])
local before = tonumber(ARGV[3])
local treed = false
for i = 1, #meta, 2 do
  if meta[i] == 'tree' then
    treed = meta[i + 1] == '1'
  end
end
if not treed then
  local plain = ARGV[1] == ''
  if not plain then
    -- A linear thread's last message needs no tree: the branch through it is the list.
    local last = redis.call('LINDEX', KEYS[2], -1)
    plain = last ~= false and tree_id_of(last) == ARGV[1]
  end
  if plain then
    local stop = (before or redis.call('LLEN', KEYS[2])) - 1
    local start = math.max(stop - limit + 1, 0)
    local got = {}
    if stop >= start then
      got = redis.call('LRANGE', KEYS[2], math.max(start - 1, 0), stop)
    end
    local replaced = false
    for _, json in ipairs(got) do
      if tree_superseded(json) then
        replaced = true
        break
      end
    end
    if not replaced then
      return {meta, 'linear', start, got}
    end
  end
  Tree.build(KEYS[1], KEYS[2], tree, path, redis.call('PTTL', KEYS[1]))
  meta = redis.call('HGETALL', KEYS[1])
end
-- The page's list indexes, oldest first, and its first message's parent's (-1: none);
-- `marked`: which of them have siblings, when the path says.
local page, parent, marked = nil, -1, nil
if ARGV[1] == '' then
  -- The active branch: a range of its path, from its end or from the cursor's depth, with
  -- the parent of the page's first message in front when there is one.
  local got, ahead = nil, false
  if before then
    local _, _, depth = Tree.node(tree, before)
    if depth and Tree.entry_index(redis.call('LINDEX', path, depth)) == before then
      got = depth > 0
        and redis.call('LRANGE', path, math.max(depth - limit - 1, 0), depth - 1) or {}
      ahead = depth - limit - 1 >= 0
    end
  else
    got = redis.call('LRANGE', path, -(limit + 1), -1)
    ahead = #got > limit
  end
  if got then
    page, marked = {}, {}
    for k, entry in ipairs(got) do
      if k == 1 and ahead then
        parent = Tree.entry_index(entry)
      else
        page[#page + 1], marked[#page + 1] = Tree.entry_index(entry)
      end
    end
  end
end
if not page then
  -- Another branch (or a cursor from before a switch): up the tree from its end.
  local at
  if before then
    local _, up = Tree.node(tree, before)
    at = up or -1
  else
    at = Tree.index(tree, ARGV[1])
    if not at then
      return {meta, 'no_message'}
    end
    if ARGV[4] ~= '1' then
      at = Tree.newest_leaf(tree, at)
    end
  end
  local up_the_tree = {}
  while at >= 0 and #up_the_tree < limit do
    local id, up = Tree.node(tree, at)
    if not id then
      break
    end
    up_the_tree[#up_the_tree + 1] = at
    at = up
  end
  page = {}
  for k = #up_the_tree, 1, -1 do
    page[#page + 1] = up_the_tree[k]
  end
  parent = at
end
-- The messages; neighbouring list indexes are read as one range. When the parent is just
-- before the first, it is read with it, for its id.
local messages = {}
local parent_id = ''
local k = 1
while k <= #page do
  local from = page[k]
  local to = from
  while k < #page and page[k + 1] == to + 1 do
    k = k + 1
    to = to + 1
  end
  local with_parent = from == page[1] and parent >= 0 and parent == from - 1
  local got = redis.call('LRANGE', KEYS[2], with_parent and from - 1 or from, to)
  for j, json in ipairs(got) do
    if with_parent and j == 1 then
      parent_id = tree_id_of(json) or ''
    else
      messages[#messages + 1] = json
    end
  end
  k = k + 1
end
if parent >= 0 and parent_id == '' and #page > 0 then
  parent_id = (Tree.node(tree, parent)) or ''
end
-- Each message's versions: its parent's children, read at once for those that have more
-- than one (all of them off the active branch's path, which does not say).
local fields, slot = {}, {}
local parents = {}
for j = 1, #page do
  local up = j == 1 and parent or page[j - 1]
  parents[j] = up
  if (not marked or marked[j]) and not slot[up] then
    fields[#fields + 1] = 'c' .. up
    slot[up] = #fields
  end
end
local found = #fields > 0 and redis.call('HMGET', tree, unpack(fields)) or {}
local kids = {}
for j = 1, #page do
  local at = slot[parents[j]]
  kids[j] = at and found[at] or ''
end
local first = -1
if parent >= 0 and #page > 0 then
  first = page[1]
end
return {meta, 'tree', first, parent_id, messages, kids}
