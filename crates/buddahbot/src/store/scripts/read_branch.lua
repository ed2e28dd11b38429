-- Reads a thread and one page of one of its branches, newest message last, in one round trip
-- (tree.lua). A linear thread is read as a range of its list; one that still holds replies a
-- regenerate replaced before branches existed, or whose branch through a named message is
-- asked for, gets its tree first. A page costs O(its length) however large the thread.
-- KEYS: 1 meta, 2 messages, 3 tree
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
local meta = redis.call('HGETALL', KEYS[1])
if #meta == 0 then
  return {}
end
local limit = tonumber(ARGV[2])
local before = tonumber(ARGV[3])
local treed, leaf = false, nil
for i = 1, #meta, 2 do
  if meta[i] == 'tree' then
    treed = meta[i + 1] == '1'
  elseif meta[i] == 'activeLeafId' then
    leaf = meta[i + 1]
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
  tree_build(KEYS[1], KEYS[2], KEYS[3], redis.call('PTTL', KEYS[1]))
  meta = redis.call('HGETALL', KEYS[1])
  leaf = redis.call('HGET', KEYS[1], 'activeLeafId')
end
local at
if before then
  local _, up = tree_node(KEYS[3], before)
  at = up or -1
elseif ARGV[1] ~= '' then
  at = tree_index(KEYS[3], ARGV[1])
  if not at then
    return {meta, 'no_message'}
  end
  if ARGV[4] ~= '1' then
    at = tree_newest_leaf(KEYS[3], at)
  end
else
  at = leaf and tree_index(KEYS[3], leaf) or -1
end
-- Up from the page's newest message to its oldest.
local path, parents = {}, {}
while at >= 0 and #path < limit do
  local id, up = tree_node(KEYS[3], at)
  if not id then
    break
  end
  path[#path + 1] = at
  parents[#parents + 1] = up
  at = up
end
-- Oldest first; consecutive list indexes are read as one range.
local messages, kids, seen = {}, {}, {}
local k = #path
while k >= 1 do
  local from = path[k]
  local to = from
  while k > 1 and path[k - 1] == to + 1 do
    k = k - 1
    to = to + 1
  end
  for _, json in ipairs(redis.call('LRANGE', KEYS[2], from, to)) do
    messages[#messages + 1] = json
  end
  k = k - 1
end
for j = #parents, 1, -1 do
  local up = parents[j]
  if not seen[up] then
    seen[up] = redis.call('HGET', KEYS[3], 'c' .. up) or ''
  end
  kids[#kids + 1] = seen[up]
end
local first, parent_id = -1, ''
if at >= 0 and #path > 0 then
  first = path[#path]
  parent_id = (tree_node(KEYS[3], at)) or ''
end
return {meta, 'tree', first, parent_id, messages, kids}
