-- Library prepended to the scripts that add messages to a thread or read its branches (see
-- scripts.rs). A thread's messages are stored in its LIST in the order they were written,
-- never moved. While each message follows the one before it (a linear thread) that is all
-- there is. The first message that follows another — an edit, a regenerated reply, an
-- explicit `parentId`, a switch to another branch — gives the thread a tree: meta `tree` =
-- '1' and the HASH `<thread>:tree` holding, for every message,
--   i<id>    -> its list index
--   m<index> -> '<id> <the parent's list index>' (-1 for a first message), plus
--               ' <id of the message it edits>' for an edit made through the AI SDK
--   c<index> -> the ids of its children, oldest first, space-separated ('c-1': the first
--               messages)
-- Meta `activeLeafId` names the last message of the branch the thread shows. Message ids
-- are `[A-Za-z0-9_-]`, so a space separates them. Field names are those of store/schema.rs.

-- The id a stored message's JSON starts with (a reply a regenerate replaced, written before
-- branches, starts with its `supersededBy` mark; its own id is the first `id` after it).
local function tree_id_of(json)
  return string.match(json, '"id":"([%w_%-]+)"')
end

-- Whether a stored message was replaced by a regenerate before branches existed.
local function tree_superseded(json)
  return string.sub(json, 1, 17) == '{"supersededBy":"'
end

-- Records message `id` at list index `index` under the message at `parent` (-1: none).
local function tree_add(tree, id, index, parent, origin)
  local m = id .. ' ' .. parent
  if origin then
    m = m .. ' ' .. origin
  end
  local kids = redis.call('HGET', tree, 'c' .. parent)
  redis.call('HSET', tree, 'i' .. id, index, 'm' .. index, m,
    'c' .. parent, kids and (kids .. ' ' .. id) or id)
end

-- `m<index>` as (id, parent index, origin or nil); nil for an unknown index.
local function tree_node(tree, index)
  local m = redis.call('HGET', tree, 'm' .. index)
  if not m then
    return nil
  end
  local id, parent, origin = string.match(m, '^(%S+) (%S+) ?(%S*)$')
  return id, tonumber(parent), origin ~= '' and origin or nil
end

-- The list index of message `id`, or nil.
local function tree_index(tree, id)
  local index = redis.call('HGET', tree, 'i' .. id)
  return index and tonumber(index)
end

-- The newest leaf under the message at `index`: its newest child's newest child, and so on.
local function tree_newest_leaf(tree, index)
  while true do
    local kids = redis.call('HGET', tree, 'c' .. index)
    if not kids then
      return index
    end
    index = tree_index(tree, string.match(kids, '(%S+)$'))
  end
end

-- Gives a linear thread its tree: each message follows the last one before it that no
-- regenerate replaced (a replaced reply is a sibling of its replacement). Written in
-- batches (a command's arguments have a limit). Sets meta `tree` and `activeLeafId` (the
-- last message of that line) and returns the leaf's list index (-1 for an empty thread).
local function tree_build(meta, messages, tree, ttl)
  local fields, kids = {}, {}
  local line, leaf_id = -1, nil
  local function flush()
    if #fields > 0 then
      redis.call('HSET', tree, unpack(fields))
      fields = {}
    end
  end
  for i, json in ipairs(redis.call('LRANGE', messages, 0, -1)) do
    local index = i - 1
    local id = tree_id_of(json)
    if id then
      fields[#fields + 1] = 'i' .. id
      fields[#fields + 1] = index
      fields[#fields + 1] = 'm' .. index
      fields[#fields + 1] = id .. ' ' .. line
      local c = kids[line]
      kids[line] = c and (c .. ' ' .. id) or id
      if not tree_superseded(json) then
        line, leaf_id = index, id
      end
      if #fields >= 4000 then
        flush()
      end
    end
  end
  for parent, ids in pairs(kids) do
    fields[#fields + 1] = 'c' .. parent
    fields[#fields + 1] = ids
    if #fields >= 4000 then
      flush()
    end
  end
  flush()
  redis.call('HSET', meta, 'tree', '1')
  if leaf_id then
    redis.call('HSET', meta, 'activeLeafId', leaf_id)
    if tonumber(ttl) > 0 then
      redis.call('PEXPIRE', tree, ttl)
    end
  else
    redis.call('HDEL', meta, 'activeLeafId')
  end
  return line
end
